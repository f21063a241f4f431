// The S3 front: path-style requests, authenticated before any body is read, objects encrypted on the way in.
import { createHash, randomUUID } from "node:crypto";
import * as http from "node:http";
import { pipeline, type Readable, Transform, type TransformCallback } from "node:stream";
import {
    CreateBucketCommand,
    DeleteBucketCommand,
    DeleteObjectsCommand,
    HeadBucketCommand,
    ListBucketsCommand,
    type S3Client,
} from "@aws-sdk/client-s3";
import { AwsChunkedDecoder } from "./auth/chunked";
import { type Verified, verifySignature } from "./auth/sigv4";
import { errorXml, S3Error, xmlEscape, xmlUnescape } from "./errors";
import { NameCipher } from "./format/names";
import { type Listing, type ListRequest, listObjects } from "./listing";
import { EncryptedObjects } from "./objects";
import { listVersion, operationOf, type RequestEvent } from "./ops";
import type { TransitClient } from "./vault";

export interface ServiceOptions {
    region: string;
    /** Access key id -> secret of the clients allowed in. */
    accessKeys: Record<string, string>;
    backend: S3Client;
    transit: TransitClient;
    etagKey: Buffer;
    /** Turns name privacy on: object keys are encrypted before they reach the backend. */
    nameKey?: Buffer;
    maxObjectSize?: number;
    /** Called once per request when it ends, for metrics and logs. */
    observe?: (event: RequestEvent) => void;
}

const chunkedModes = new Set([
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
]);

interface Route {
    bucket?: string;
    key?: string;
    query: URLSearchParams;
    /** The path is not valid percent-encoding: it names no bucket or key. */
    malformed?: true;
}

function route(url: string): Route {
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
    const [bucket, ...rest] = path.slice(1).split("/");
    try {
        const key = rest.length ? decodeURIComponent(rest.join("/")) : undefined;
        return { bucket: bucket ? decodeURIComponent(bucket) : undefined, key: key || undefined, query };
    } catch {
        return { query, malformed: true };
    }
}

/**
 * Counts the body so a short or long one is refused rather than stored, and checks a signed payload's SHA-256
 * as it streams: a failure fails the stream, so nothing is stored. One stage, as every stage costs per chunk.
 */
class BodyCheck extends Transform {
    private seen = 0;
    private readonly hash;
    constructor(
        private readonly expectedLength: number,
        private readonly expectedSha256: string | undefined,
    ) {
        super();
        this.hash = expectedSha256 === undefined ? undefined : createHash("sha256");
    }
    override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback) {
        this.seen += chunk.length;
        if (this.seen > this.expectedLength) {
            done(new S3Error("InvalidRequest", "the body is longer than Content-Length"));
            return;
        }
        this.hash?.update(chunk);
        done(null, chunk);
    }
    override _flush(done: TransformCallback) {
        if (this.seen !== this.expectedLength) {
            done(new S3Error("IncompleteBody", "the body is shorter than Content-Length"));
        } else if (this.hash && this.hash.digest("hex") !== this.expectedSha256) {
            done(new S3Error("XAmzContentSHA256Mismatch", "the body does not match x-amz-content-sha256"));
        } else {
            done();
        }
    }
}

function parseRange(header: string | undefined, length: number): { start: number; end: number } | undefined {
    const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
    if (!m || (m[1] === "" && m[2] === "")) return undefined; // absent, or a form S3 ignores (several ranges)
    let start: number;
    let end: number;
    if (m[1] === "") {
        start = Math.max(0, length - Number(m[2]));
        end = length - 1;
    } else {
        start = Number(m[1]);
        end = m[2] === "" ? length - 1 : Math.min(Number(m[2]), length - 1);
    }
    if (length === 0 || start >= length || start > end)
        throw new S3Error("InvalidRange", "the requested range is not satisfiable");
    return { start, end };
}

/**
 * The plaintext body of an upload, whatever its encoding (plain, signed hash, aws-chunked), checked against
 * its declared length and signed hash as it streams. `failure()` is the first error the stream hit.
 */
function uploadBody(
    req: http.IncomingMessage,
    auth: Verified,
    maxSize: number,
): { body: Readable; length: number; failure: () => unknown } {
    const chunked = auth.payloadHash.startsWith("STREAMING-");
    if (chunked && !chunkedModes.has(auth.payloadHash)) {
        throw new S3Error("NotImplemented", `${auth.payloadHash} is not supported`);
    }
    const length = Number(req.headers[chunked ? "x-amz-decoded-content-length" : "content-length"]);
    if (!Number.isSafeInteger(length) || length < 0) throw new S3Error("InvalidRequest", "Content-Length is required");
    if (length > maxSize) throw new S3Error("EntityTooLarge", `uploads are at most ${maxSize} bytes`);
    const stages: Transform[] = [];
    if (chunked) {
        const signing = auth.payloadHash.startsWith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
            ? { signingKey: auth.signingKey, seedSignature: auth.signature, amzDate: auth.amzDate, scope: auth.scope }
            : undefined;
        stages.push(new AwsChunkedDecoder(signing, req.headers["x-amz-trailer"] as string | undefined));
    }
    stages.push(new BodyCheck(length, /^[0-9a-f]{64}$/.test(auth.payloadHash) ? auth.payloadHash : undefined));
    let failure: unknown;
    let body: Readable = req;
    for (const stage of stages) {
        const upstream = body;
        body = upstream.pipe(stage);
        upstream.on("error", (err) => stage.destroy(err));
    }
    body.on("error", (err) => (failure ??= err));
    return { body, length, failure: () => failure };
}

/** A request body of at most 1 MiB, checked against its signed SHA-256 when there is one. */
async function readSmallBody(req: http.IncomingMessage, payloadHash: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > 1024 * 1024) throw new S3Error("EntityTooLarge", "the request body is over 1 MiB");
        chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    if (/^[0-9a-f]{64}$/.test(payloadHash) && createHash("sha256").update(body).digest("hex") !== payloadHash) {
        throw new S3Error("XAmzContentSHA256Mismatch", "the body does not match x-amz-content-sha256");
    }
    return body;
}

function userMetadataOf(headers: http.IncomingHttpHeaders): Record<string, string> {
    return Object.fromEntries(
        Object.entries(headers)
            .filter(([name]) => name.startsWith("x-amz-meta-"))
            .map(([name, value]) => [name.slice("x-amz-meta-".length), String(value)]),
    );
}

/** RFC 9110 order as S3 applies it: If-Match, then If-Unmodified-Since, If-None-Match, If-Modified-Since. */
function preconditionFails(
    headers: http.IncomingHttpHeaders,
    info: { etag: string; lastModified?: Date },
): 304 | 412 | undefined {
    const matches = (list: string) => list.split(",").some((t) => t.trim() === "*" || t.trim() === info.etag);
    const modified = info.lastModified?.getTime() ?? 0;
    const since = (h: string | undefined) => (h ? Date.parse(h) : NaN);
    if (headers["if-match"] !== undefined) {
        if (!matches(headers["if-match"])) return 412;
    } else if (since(headers["if-unmodified-since"]) < Math.floor(modified / 1000) * 1000) {
        return 412;
    }
    if (headers["if-none-match"] !== undefined) {
        if (matches(headers["if-none-match"])) return 304;
    } else if (since(headers["if-modified-since"]) >= Math.floor(modified / 1000) * 1000) {
        return 304;
    }
    return undefined;
}

function firstChunk(stream: Readable): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
        const cleanup = () => {
            stream.off("data", onData).off("end", onEnd).off("error", onError);
        };
        const onData = (chunk: Buffer) => {
            cleanup();
            stream.pause();
            resolve(chunk);
        };
        const onEnd = () => {
            cleanup();
            resolve(null);
        };
        const onError = (err: Error) => {
            cleanup();
            reject(err);
        };
        stream.on("data", onData).on("end", onEnd).on("error", onError);
    });
}

/** Maps a backend (AWS SDK) or Vault failure to what the client should see. */
function asS3Error(err: unknown): S3Error {
    if (err instanceof S3Error) return err;
    const name = (err as { name?: string }).name;
    if (name === "NoSuchKey" || name === "NotFound") return new S3Error("NoSuchKey", "the object does not exist");
    if (name === "NoSuchBucket") return new S3Error("NoSuchBucket", "the bucket does not exist");
    if (name === "InvalidBucketName") return new S3Error("InvalidBucketName", "the bucket name is not valid");
    if (name === "BucketAlreadyOwnedByYou") return new S3Error("BucketAlreadyOwnedByYou", "the bucket exists already");
    if (name === "PreconditionFailed") return new S3Error("PreconditionFailed", "a precondition failed");
    return new S3Error("ServiceUnavailable", "the storage backend or Vault is unavailable");
}

function listBucketsXml(buckets: { Name?: string; CreationDate?: Date }[]): string {
    const items = buckets
        .map(
            (b) =>
                `<Bucket><Name>${xmlEscape(b.Name ?? "")}</Name><CreationDate>${b.CreationDate?.toISOString() ?? ""}</CreationDate></Bucket>`,
        )
        .join("");
    return `<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult><Owner><ID>peoples-cloud</ID></Owner><Buckets>${items}</Buckets></ListAllMyBucketsResult>`;
}

/**
 * A name as S3 lists it with `encoding-type=url`: form-style percent-encoding (a space is `+`), `/` kept.
 * Clients that ask for it (rclone, minio-go, the AWS CLI) decode every key and prefix they get back.
 */
const urlEncoded = (name: string) => encodeURIComponent(name).replaceAll("%2F", "/").replaceAll("%20", "+");

async function listingXml(
    bucket: string,
    request: ListRequest,
    listing: Listing,
    objects: EncryptedObjects,
    encodingType?: "url",
): Promise<string> {
    const sizes = await Promise.all(
        listing.objects.map((o) => objects.listedSize(bucket, o.key, o.backendSize, o.backendEtag)),
    );
    const name = (value: string) => xmlEscape(encodingType ? urlEncoded(value) : value);
    const contents = listing.objects
        .map(
            (o, i) =>
                `<Contents><Key>${name(o.key)}</Key><LastModified>${o.lastModified?.toISOString() ?? ""}</LastModified>` +
                `<ETag>${xmlEscape(objects.clientEtag(o.backendEtag))}</ETag><Size>${sizes[i]}</Size>` +
                `<StorageClass>STANDARD</StorageClass></Contents>`,
        )
        .join("");
    const prefixes = listing.prefixes
        .map((p) => `<CommonPrefixes><Prefix>${name(p)}</Prefix></CommonPrefixes>`)
        .join("");
    const opt = (tag: string, value: string | undefined, escape = xmlEscape) =>
        value ? `<${tag}>${escape(value)}</${tag}>` : "";
    const paging =
        request.version === 1
            ? `${opt("Marker", request.marker, name)}${opt("NextMarker", listing.nextMarker, name)}`
            : `<KeyCount>${listing.objects.length + listing.prefixes.length}</KeyCount>` +
              `${opt("ContinuationToken", request.continuationToken)}${opt("NextContinuationToken", listing.nextContinuationToken)}` +
              `${opt("StartAfter", request.startAfter, name)}`;
    return (
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>${xmlEscape(bucket)}</Name>` +
        `${opt("Prefix", request.prefix, name)}${opt("Delimiter", request.delimiter, name)}<MaxKeys>${request.maxKeys}</MaxKeys>` +
        `${opt("EncodingType", encodingType)}<IsTruncated>${listing.truncated}</IsTruncated>${paging}` +
        `${contents}${prefixes}</ListBucketResult>`
    );
}

export function createS3Server(options: ServiceOptions): http.Server {
    const names = options.nameKey ? new NameCipher(options.nameKey) : undefined;
    const objects = new EncryptedObjects(options.backend, options.transit, options.etagKey, names);
    const maxObjectSize = options.maxObjectSize ?? 5 * 1024 ** 3;

    async function handle(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean) {
        const method = req.method ?? "GET";
        const url = req.url ?? "/";
        const auth = verifySignature(
            { method, url, headers: req.headers },
            (id) => options.accessKeys[id],
            options.region,
        );
        const { bucket, key, query, malformed } = route(url);
        if (malformed) throw new S3Error("InvalidURI", "the path is not valid percent-encoding");
        const send = (status: number, headers: http.OutgoingHttpHeaders = {}, body?: string) => {
            res.writeHead(status, body ? { "Content-Type": "application/xml", ...headers } : headers);
            res.end(body);
        };

        if (!bucket) {
            if (method !== "GET") throw new S3Error("MethodNotAllowed", "only GET is allowed on the service");
            const out = await options.backend.send(new ListBucketsCommand({}));
            return send(200, {}, listBucketsXml(out.Buckets ?? []));
        }
        if (bucket.startsWith(".")) throw new S3Error("InvalidBucketName", "bucket names do not start with a dot");
        if (key?.startsWith(".pce/")) throw new S3Error("AccessDenied", "keys under .pce/ are reserved");

        if (!key) {
            if (method === "PUT") {
                if (expectsContinue) res.writeContinue();
                await options.backend.send(new CreateBucketCommand({ Bucket: bucket }));
                return send(200, { Location: `/${bucket}` });
            }
            // A backend's answer to HEAD has no body, so its 404 does not say that the bucket is what is missing.
            const headBucket = () =>
                options.backend.send(new HeadBucketCommand({ Bucket: bucket })).catch((err: unknown) => {
                    if ((err as { name?: string }).name !== "NotFound") throw err;
                    throw new S3Error("NoSuchBucket", "the bucket does not exist");
                });
            if (method === "HEAD") {
                await headBucket();
                return send(200);
            }
            if (method === "GET" && query.has("location")) {
                // minio-go (restic, mc) asks before its first request unless given a region. S3 names
                // us-east-1 by leaving the constraint empty.
                await headBucket();
                const location = options.region === "us-east-1" ? "" : xmlEscape(options.region);
                return send(
                    200,
                    {},
                    `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${location}</LocationConstraint>`,
                );
            }
            if (method === "DELETE") {
                await options.backend.send(new DeleteBucketCommand({ Bucket: bucket }));
                return send(204);
            }
            if (method === "POST" && query.has("delete")) {
                if (expectsContinue) res.writeContinue();
                const xml = (await readSmallBody(req, auth.payloadHash)).toString("utf8");
                const keys = [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => xmlUnescape(m[1]));
                if (keys.length === 0 || keys.length > 1000) {
                    throw new S3Error("MalformedXML", "Delete lists between 1 and 1000 keys");
                }
                if (keys.some((k) => k.startsWith(".pce/"))) {
                    throw new S3Error("AccessDenied", "keys under .pce/ are reserved");
                }
                const stored = keys.map((k) => objects.stored(bucket, k));
                const quiet = /<Quiet>\s*true\s*<\/Quiet>/.test(xml);
                const out = await options.backend.send(
                    new DeleteObjectsCommand({
                        Bucket: bucket,
                        Delete: { Objects: stored.map((Key) => ({ Key })), Quiet: quiet },
                    }),
                );
                const clientKey = (key: string | undefined) => keys[stored.indexOf(key ?? "")] ?? "";
                const deleted = (out.Deleted ?? []).map(
                    (d) => `<Deleted><Key>${xmlEscape(clientKey(d.Key))}</Key></Deleted>`,
                );
                const failed = (out.Errors ?? []).map(
                    (e) =>
                        `<Error><Key>${xmlEscape(clientKey(e.Key))}</Key><Code>${xmlEscape(e.Code ?? "")}</Code></Error>`,
                );
                return send(
                    200,
                    {},
                    `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult>${deleted.join("")}${failed.join("")}</DeleteResult>`,
                );
            }
            const version = method === "GET" ? listVersion(query) : undefined;
            if (version) {
                const encodingType = query.get("encoding-type") ?? undefined;
                if (encodingType !== undefined && encodingType !== "url") {
                    throw new S3Error("InvalidArgument", "encoding-type can only be url");
                }
                const maxKeys = query.has("max-keys") ? Number(query.get("max-keys")) : 1000;
                const request: ListRequest = {
                    version,
                    prefix: query.get("prefix") ?? "",
                    delimiter: query.get("delimiter") || undefined,
                    ...(version === 2
                        ? {
                              startAfter: query.get("start-after") ?? undefined,
                              continuationToken: query.get("continuation-token") ?? undefined,
                          }
                        : { marker: query.get("marker") ?? undefined }),
                    maxKeys: Math.min(maxKeys, 1000),
                };
                const listing = await listObjects(options.backend, bucket, request, names);
                return send(200, {}, await listingXml(bucket, request, listing, objects, encodingType));
            }
            throw new S3Error("NotImplemented", `${method} on a bucket with these parameters is not implemented`);
        }

        if (method === "PUT" && req.headers["x-amz-copy-source"]) {
            if (query.has("uploadId")) throw new S3Error("NotImplemented", "UploadPartCopy is not implemented yet");
            const raw = decodeURIComponent(String(req.headers["x-amz-copy-source"]).replace(/^\//, ""));
            const slash = raw.indexOf("/");
            if (slash < 1) throw new S3Error("InvalidArgument", "x-amz-copy-source must be bucket/key");
            const replace = req.headers["x-amz-metadata-directive"] === "REPLACE";
            const copied = await objects.copy(
                { bucket: raw.slice(0, slash), key: raw.slice(slash + 1).split("?")[0] },
                { bucket, key },
                replace
                    ? { contentType: req.headers["content-type"], userMetadata: userMetadataOf(req.headers) }
                    : undefined,
            );
            return send(
                200,
                {},
                `<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><LastModified>${copied.lastModified?.toISOString() ?? ""}</LastModified>` +
                    `<ETag>${xmlEscape(copied.etag)}</ETag></CopyObjectResult>`,
            );
        }

        if (method === "POST" && query.has("uploads")) {
            const uploadId = await objects.createUpload(bucket, key, {
                contentType: req.headers["content-type"],
                userMetadata: userMetadataOf(req.headers),
            });
            return send(
                200,
                {},
                `<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>${xmlEscape(bucket)}</Bucket>` +
                    `<Key>${xmlEscape(key)}</Key><UploadId>${xmlEscape(uploadId)}</UploadId></InitiateMultipartUploadResult>`,
            );
        }

        const uploadId = query.get("uploadId");
        if (method === "POST" && uploadId) {
            if (expectsContinue) res.writeContinue();
            const xml = (await readSmallBody(req, auth.payloadHash)).toString("utf8");
            const parts = [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
                part: Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(m[1])?.[1]),
                etag: xmlUnescape(/<ETag>([^<]*)<\/ETag>/.exec(m[1])?.[1] ?? ""),
            }));
            if (parts.length === 0 || parts.some((p) => !Number.isInteger(p.part) || !p.etag)) {
                throw new S3Error("MalformedXML", "CompleteMultipartUpload lists parts with PartNumber and ETag");
            }
            const etag = await objects.completeUpload(bucket, key, uploadId, parts);
            return send(
                200,
                {},
                `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Location>/${xmlEscape(bucket)}/${xmlEscape(key)}</Location>` +
                    `<Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`,
            );
        }
        if (method === "DELETE" && uploadId) {
            await objects.abortUpload(bucket, key, uploadId);
            return send(204);
        }
        if (method === "GET" && uploadId) {
            const marker = query.get("part-number-marker");
            const max = query.get("max-parts");
            const out = await objects.listParts(
                bucket,
                key,
                uploadId,
                marker ? Number(marker) : undefined,
                max ? Number(max) : undefined,
            );
            const parts = out.parts
                .map(
                    (p) =>
                        `<Part><PartNumber>${p.part}</PartNumber><LastModified>${p.lastModified?.toISOString() ?? ""}</LastModified>` +
                        `<ETag>${xmlEscape(p.etag)}</ETag><Size>${p.size}</Size></Part>`,
                )
                .join("");
            return send(
                200,
                {},
                `<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key>` +
                    `<UploadId>${xmlEscape(uploadId)}</UploadId><IsTruncated>${out.truncated}</IsTruncated>` +
                    `${out.nextMarker ? `<NextPartNumberMarker>${out.nextMarker}</NextPartNumberMarker>` : ""}${parts}</ListPartsResult>`,
            );
        }
        if (uploadId && method !== "PUT")
            throw new S3Error("NotImplemented", `${method} on an upload is not implemented`);

        if (method === "PUT") {
            const part = query.get("partNumber");
            if (part !== null && !uploadId) throw new S3Error("InvalidRequest", "partNumber needs an uploadId");
            const ifNoneMatch = req.headers["if-none-match"];
            if (ifNoneMatch !== undefined && ifNoneMatch !== "*") {
                throw new S3Error("NotImplemented", "If-None-Match on PUT takes only *");
            }
            const upload = uploadBody(req, auth, maxObjectSize);
            if (expectsContinue) res.writeContinue();
            try {
                if (uploadId) {
                    const partNumber = Number(part);
                    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
                        throw new S3Error("InvalidArgument", "partNumber is a whole number from 1 to 10000");
                    }
                    const etag = await objects.uploadPart(
                        bucket,
                        key,
                        uploadId,
                        partNumber,
                        upload.body,
                        upload.length,
                    );
                    return send(200, { ETag: etag });
                }
                const etag = await objects.put(
                    bucket,
                    key,
                    upload.body,
                    {
                        length: upload.length,
                        contentType: req.headers["content-type"],
                        userMetadata: userMetadataOf(req.headers),
                    },
                    { ifNoneMatch, ifMatch: req.headers["if-match"] },
                );
                return send(200, { ETag: etag });
            } catch (err) {
                throw upload.failure() ?? err;
            }
        }

        if (method === "GET" || method === "HEAD") {
            const got =
                method === "HEAD"
                    ? { info: await objects.head(bucket, key), body: undefined, range: undefined }
                    : await objects.get(
                          bucket,
                          key,
                          req.headers.range ? (length) => parseRange(req.headers.range, length) : undefined,
                      );
            const { info, range } = got;
            const notModified = preconditionFails(req.headers, info);
            if (notModified) {
                got.body?.destroy();
                if (notModified === 304) return send(304, { ETag: info.etag });
                throw new S3Error("PreconditionFailed", "a precondition does not hold");
            }
            const headers: http.OutgoingHttpHeaders = {
                "Content-Type": info.contentType ?? "binary/octet-stream",
                "Content-Length": range ? range.end - range.start + 1 : info.length,
                ETag: info.etag,
                "Accept-Ranges": "bytes",
                ...(info.lastModified ? { "Last-Modified": info.lastModified.toUTCString() } : {}),
                ...Object.fromEntries(Object.entries(info.userMetadata).map(([k, v]) => [`x-amz-meta-${k}`, v])),
                ...(range ? { "Content-Range": `bytes ${range.start}-${range.end}/${info.length}` } : {}),
            };
            if (!got.body) return send(200, headers);
            // The first segment is authenticated before any header goes out; a later failure cuts the connection.
            let streaming = false;
            let failed = false;
            got.body.on("error", () => {
                failed = true;
                if (streaming) res.destroy(); // before the headers, firstChunk rejects and a 500 goes out
            });
            const first = await firstChunk(got.body);
            res.writeHead(range ? 206 : 200, headers);
            streaming = true;
            if (failed) {
                res.destroy();
                return;
            }
            if (first) res.write(first);
            // Unlike pipe(), pipeline() also ends the body when the client goes away, and with it the backend GET.
            pipeline(got.body, res, () => {});
            return;
        }

        if (method === "DELETE") {
            await objects.delete(bucket, key);
            return send(204);
        }
        throw new S3Error("NotImplemented", `${method} on an object is not implemented`);
    }

    const onRequest = (expectsContinue: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
        // From randomUUID's buffered entropy: a CSPRNG call of its own per request cost about 80 µs of CPU.
        const requestId = randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase();
        res.setHeader("x-amz-request-id", requestId);
        let errorCode: string | undefined;
        let cause: string | undefined;
        if (options.observe) {
            const observe = options.observe;
            const started = process.hrtime.bigint();
            const { bytesWritten } = req.socket;
            // Counting chunks as they pass; the socket's read count already holds some body at this point.
            let bytesIn = 0;
            req.on("data", (chunk: Buffer) => (bytesIn += chunk.length));
            res.once("close", () => {
                const { bucket, key, query, malformed } = route(req.url ?? "/");
                observe({
                    requestId,
                    operation: malformed
                        ? "Unknown"
                        : operationOf(
                              req.method ?? "GET",
                              bucket !== undefined,
                              key !== undefined,
                              query,
                              req.headers["x-amz-copy-source"] !== undefined,
                          ),
                    bucket,
                    status: res.statusCode,
                    errorCode: errorCode ?? (res.writableFinished ? undefined : "ConnectionCut"),
                    cause,
                    durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
                    bytesIn,
                    bytesOut: req.socket.bytesWritten - bytesWritten,
                });
            });
        }
        handle(req, res, expectsContinue).catch((err: unknown) => {
            const s3err = asS3Error(err);
            errorCode = s3err.code;
            // For operators: what failed underneath (an error class or a socket code, never a message).
            if (!(err instanceof S3Error)) cause = (err as { code?: string }).code ?? (err as Error).name;
            if (res.headersSent) {
                res.destroy();
                return;
            }
            const body = req.method === "HEAD" ? undefined : errorXml(s3err, req.url ?? "/", requestId);
            res.writeHead(
                s3err.status,
                body ? { "Content-Type": "application/xml", Connection: "close" } : { Connection: "close" },
            );
            res.end(body);
            req.resume(); // drain what the client still sends, so it reads the error
        });
    };
    const server = http.createServer(onRequest(false));
    // Authenticate before accepting a body: a refused upload never gets sent.
    server.on("checkContinue", onRequest(true));
    return server;
}
