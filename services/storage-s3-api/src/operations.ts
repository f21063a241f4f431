// Every request on the S3 port is one operation of this table. The first entry whose scope and test fit the
// request handles it and names it for metrics and logs; `notFound` says what a backend's bare 404 means in
// the error the client gets. The last entry of each scope takes what no other does.
import type { Handler } from "./call";
import { S3Error } from "./errors";
import * as bucket from "./handlers/bucket";
import * as multipart from "./handlers/multipart";
import * as object from "./handlers/object";
import { listVersion } from "./listing";

/**
 * Where a request's path points: the service (no bucket), a bucket, an object (bucket and key), or nowhere
 * (the path is not valid percent-encoding).
 */
export type Scope = "service" | "bucket" | "object" | "invalid";

/** What operations are told apart by: method, scope, query and whether it copies. Nothing else is read. */
export interface RequestShape {
    method: string;
    scope: Scope;
    query: URLSearchParams;
    /** It has an `x-amz-copy-source` header with a value. */
    copy: boolean;
}

export interface Operation {
    /** The S3 operation's name, as metrics and logs give it; "Unknown" for what the service does not know. */
    readonly name: string;
    readonly scope: Scope;
    readonly matches: (request: RequestShape) => boolean;
    readonly handle: Handler;
    /**
     * What a backend's bare NotFound stands for in the client's error (a HEAD's 404 has no body to say what is
     * missing); NoSuchKey if unset.
     */
    readonly notFound?: "NoSuchKey" | "NoSuchBucket";
}

const method =
    (name: string) =>
    ({ method }: RequestShape) =>
        method === name;
const always = () => true;
/** It names a multipart upload. */
const upload = ({ query }: RequestShape) => Boolean(query.get("uploadId"));
const unsupported =
    (what: string): Handler =>
    ({ method }) =>
        Promise.reject(new S3Error("NotImplemented", `${method} on ${what} is not implemented`));

export const OPERATIONS: readonly Operation[] = [
    {
        name: "Unknown",
        scope: "invalid",
        matches: always,
        handle: () => Promise.reject(new S3Error("InvalidURI", "the path is not valid percent-encoding")),
    },

    { name: "ListBuckets", scope: "service", matches: always, handle: bucket.listBuckets },

    { name: "CreateBucket", scope: "bucket", matches: method("PUT"), handle: bucket.createBucket },
    {
        name: "HeadBucket",
        scope: "bucket",
        matches: method("HEAD"),
        handle: bucket.headBucket,
        notFound: "NoSuchBucket",
    },
    {
        name: "GetBucketLocation",
        scope: "bucket",
        matches: (r) => r.method === "GET" && r.query.has("location"),
        handle: bucket.getBucketLocation,
        notFound: "NoSuchBucket",
    },
    { name: "DeleteBucket", scope: "bucket", matches: method("DELETE"), handle: bucket.deleteBucket },
    {
        name: "DeleteObjects",
        scope: "bucket",
        matches: (r) => r.method === "POST" && r.query.has("delete"),
        handle: bucket.deleteObjects,
    },
    {
        name: "ListObjects",
        scope: "bucket",
        matches: (r) => r.method === "GET" && listVersion(r.query) === 1,
        handle: bucket.listObjects(1),
    },
    {
        name: "ListObjectsV2",
        scope: "bucket",
        matches: (r) => r.method === "GET" && listVersion(r.query) === 2,
        handle: bucket.listObjects(2),
    },
    {
        name: "GetBucket",
        scope: "bucket",
        matches: method("GET"),
        handle: unsupported("a bucket with these parameters"),
    },
    { name: "Unknown", scope: "bucket", matches: always, handle: unsupported("a bucket with these parameters") },

    {
        name: "UploadPartCopy",
        scope: "object",
        matches: (r) => r.method === "PUT" && r.copy && r.query.has("uploadId"),
        handle: () => Promise.reject(new S3Error("NotImplemented", "UploadPartCopy is not implemented yet")),
    },
    { name: "CopyObject", scope: "object", matches: (r) => r.method === "PUT" && r.copy, handle: object.copyObject },
    {
        name: "CreateMultipartUpload",
        scope: "object",
        matches: (r) => r.method === "POST" && r.query.has("uploads"),
        handle: multipart.createUpload,
    },
    {
        name: "CompleteMultipartUpload",
        scope: "object",
        matches: (r) => r.method === "POST" && upload(r),
        handle: multipart.completeUpload,
    },
    {
        name: "AbortMultipartUpload",
        scope: "object",
        matches: (r) => r.method === "DELETE" && upload(r),
        handle: multipart.abortUpload,
    },
    {
        name: "ListParts",
        scope: "object",
        matches: (r) => r.method === "GET" && upload(r),
        handle: multipart.listParts,
    },
    {
        name: "UploadPart",
        scope: "object",
        matches: (r) => r.method === "PUT" && upload(r),
        handle: multipart.uploadPart,
    },
    { name: "Unknown", scope: "object", matches: upload, handle: unsupported("an upload") },
    { name: "PutObject", scope: "object", matches: method("PUT"), handle: object.putObject },
    { name: "GetObject", scope: "object", matches: method("GET"), handle: object.getObject },
    { name: "HeadObject", scope: "object", matches: method("HEAD"), handle: object.headObject },
    { name: "DeleteObject", scope: "object", matches: method("DELETE"), handle: object.deleteObject },
    { name: "Unknown", scope: "object", matches: always, handle: unsupported("an object") },
];

/** The operation a request is. */
export function operationFor(request: RequestShape): Operation {
    const operation = OPERATIONS.find((op) => op.scope === request.scope && op.matches(request));
    if (!operation) throw new Error(`the operation table has no last entry for ${request.scope}`);
    return operation;
}
