// ListObjects (versions 1 and 2) over the backend: passed through when names are plain, rebuilt from
// decrypted names when name privacy is on (the backend's order and prefixes mean nothing then).
import {
    ListObjectsCommand,
    type ListObjectsCommandOutput,
    ListObjectsV2Command,
    type ListObjectsV2CommandOutput,
    type S3Client,
} from "@aws-sdk/client-s3";
import { S3Error } from "./errors";
import type { NameCipher } from "./format/names";

/** The query parameters of ListObjects (version 1); a GET on a bucket with any other is some other request. */
const LIST_V1 = new Set(["prefix", "delimiter", "marker", "max-keys", "encoding-type", "x-id"]);

/** Which ListObjects a GET on a bucket is, if it is one. */
export function listVersion(query: URLSearchParams): 1 | 2 | undefined {
    if (query.get("list-type") === "2") return 2;
    return [...query.keys()].every((k) => LIST_V1.has(k)) ? 1 : undefined;
}

export interface ListRequest {
    prefix: string;
    delimiter?: string;
    startAfter?: string;
    continuationToken?: string;
    /** ListObjects (version 1): resumes after this key or common prefix, where version 2 has its token. */
    marker?: string;
    version: 1 | 2;
    maxKeys: number;
}

export interface ListedObject {
    key: string;
    lastModified?: Date;
    backendEtag?: string;
    backendSize: number;
}

export interface Listing {
    objects: ListedObject[];
    prefixes: string[];
    truncated: boolean;
    nextContinuationToken?: string;
    /** Version 1: the last key or common prefix of a truncated page. */
    nextMarker?: string;
}

/** The service's own records live under .pce/; they are never the client's objects. */
const isSidecar = (key: string | undefined) => key?.startsWith(".pce/") ?? false;
const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export async function listObjects(
    backend: S3Client,
    bucket: string,
    request: ListRequest,
    names?: NameCipher,
): Promise<Listing> {
    if (!Number.isInteger(request.maxKeys) || request.maxKeys < 0) {
        throw new S3Error("InvalidArgument", "max-keys is a whole number from 0");
    }
    return names ? listPrivate(backend, bucket, request, names) : listPlain(backend, bucket, request);
}

async function listPlain(backend: S3Client, bucket: string, request: ListRequest): Promise<Listing> {
    const common = { Bucket: bucket, Prefix: request.prefix || undefined, Delimiter: request.delimiter };
    const out =
        request.version === 1
            ? await backend.send(
                  new ListObjectsCommand({ ...common, Marker: request.marker, MaxKeys: request.maxKeys }),
              )
            : await backend.send(
                  new ListObjectsV2Command({
                      ...common,
                      ContinuationToken: request.continuationToken,
                      StartAfter: request.startAfter,
                      MaxKeys: request.maxKeys,
                  }),
              );
    return {
        objects: (out.Contents ?? [])
            .filter((o) => !isSidecar(o.Key))
            .map((o) => ({
                key: o.Key ?? "",
                lastModified: o.LastModified,
                backendEtag: o.ETag,
                backendSize: o.Size ?? 0,
            })),
        prefixes: (out.CommonPrefixes ?? []).map((p) => p.Prefix ?? "").filter((p) => !isSidecar(p)),
        truncated: out.IsTruncated ?? false,
        nextContinuationToken: "NextContinuationToken" in out ? out.NextContinuationToken : undefined,
        nextMarker: request.version === 1 && out.IsTruncated ? nextMarkerOf(out) : undefined,
    };
}

/** S3 gives NextMarker only with a delimiter; without one a page resumes after its last key or prefix. */
function nextMarkerOf(page: ListObjectsCommandOutput): string | undefined {
    if (page.NextMarker) return page.NextMarker;
    return [page.Contents?.at(-1)?.Key, page.CommonPrefixes?.at(-1)?.Prefix]
        .filter((name) => name !== undefined)
        .sort(utf8Order)
        .at(-1);
}

async function* backendPages(backend: S3Client, bucket: string, prefix: string, delimiter?: string) {
    let token: string | undefined;
    do {
        const page: ListObjectsV2CommandOutput = await backend.send(
            new ListObjectsV2Command({
                Bucket: bucket,
                Prefix: prefix || undefined,
                Delimiter: delimiter,
                ContinuationToken: token,
            }),
        );
        yield page;
        token = page.NextContinuationToken;
    } while (token);
}

const tokenOf = (key: string) => `p1.${Buffer.from(key).toString("base64url")}`;

function keyOfToken(token: string): string {
    if (!token.startsWith("p1.")) throw new S3Error("InvalidArgument", "the continuation token is not valid");
    return Buffer.from(token.slice(3), "base64url").toString();
}

/**
 * With encrypted names, a listing reads the whole folder the prefix ends in (one level with "/" as delimiter,
 * the whole subtree otherwise), decrypts it, and sorts it: O(entries) per page, the price of hiding names.
 */
async function listPrivate(backend: S3Client, bucket: string, request: ListRequest, names: NameCipher) {
    const { prefix, delimiter } = request;
    const objects: ListedObject[] = [];
    const prefixes = new Set<string>();
    // As S3 documents it: keys after start-after are rolled up into prefixes (which may sort before it); a
    // continuation token resumes after the last entry it gave, key or prefix.
    const token = request.continuationToken ? keyOfToken(request.continuationToken) : request.marker || undefined;
    const startAfter = token === undefined ? request.startAfter : undefined;
    // One folder level is enough with "/" as delimiter, unless start-after may fall inside a subfolder.
    const byFolder = delimiter === "/" && startAfter === undefined;
    const add = (key: string, object: Omit<ListedObject, "key">) => {
        if (!key.startsWith(prefix) || (startAfter !== undefined && utf8Order(key, startAfter) <= 0)) return;
        const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
        if (cut >= 0) prefixes.add(key.slice(0, cut + delimiter!.length));
        else objects.push({ key, ...object });
    };
    for await (const page of backendPages(
        backend,
        bucket,
        names.folderPrefix(bucket, prefix),
        byFolder ? "/" : undefined,
    )) {
        for (const o of page.Contents ?? []) {
            const key = isSidecar(o.Key) ? undefined : names.decrypt(bucket, o.Key ?? "");
            if (key !== undefined) {
                add(key, { lastModified: o.LastModified, backendEtag: o.ETag, backendSize: o.Size ?? 0 });
            }
        }
        for (const p of page.CommonPrefixes ?? []) {
            const folder = isSidecar(p.Prefix) ? undefined : names.decrypt(bucket, (p.Prefix ?? "").slice(0, -1));
            if (folder !== undefined) add(`${folder}/`, { backendSize: 0 });
        }
    }
    const entries = [
        ...objects.map((object) => ({ name: object.key, object })),
        ...[...prefixes].map((name) => ({ name, object: undefined })),
    ]
        .filter((e) => token === undefined || utf8Order(e.name, token) > 0)
        .sort((a, b) => utf8Order(a.name, b.name));
    const page = entries.slice(0, request.maxKeys);
    const truncated = entries.length > page.length;
    return {
        objects: page.flatMap((e) => (e.object ? [e.object] : [])),
        prefixes: page.flatMap((e) => (e.object ? [] : [e.name])),
        truncated,
        nextContinuationToken: truncated && page.length ? tokenOf(page[page.length - 1].name) : undefined,
        nextMarker: truncated ? page.at(-1)?.name : undefined,
    };
}
