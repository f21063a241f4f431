// The operations on one object: put, get, head, copy and delete.
import type * as http from "node:http";
import type { Readable } from "node:stream";
import type { Call } from "../call";
import { S3Error, xmlEscape } from "../errors";
import { contentMd5, type ObjectInfo } from "../objects";
import { receiveUpload } from "../request-body";
import { sendPlaintext } from "../send-plaintext";

export async function putObject(call: Call) {
    const { req, query, bucket, key, service } = call;
    if (query.get("partNumber") !== null) throw new S3Error("InvalidRequest", "partNumber needs an uploadId");
    const md5 = contentMd5(req.headers["content-md5"] as string | undefined);
    await receiveUpload(call, (body, length) =>
        service.objects.put(
            bucket,
            key,
            body,
            { length, contentType: req.headers["content-type"], userMetadata: userMetadataOf(req.headers) },
            // receiveUpload let only `If-None-Match: *` through.
            { ifNoneMatch: req.headers["if-none-match"] === "*" ? "*" : undefined, ifMatch: req.headers["if-match"] },
            md5,
        ),
    );
}

export async function copyObject({ req, bucket, key, service, send }: Call) {
    const raw = decodeURIComponent(String(req.headers["x-amz-copy-source"]).replace(/^\//, ""));
    const slash = raw.indexOf("/");
    if (slash < 1) throw new S3Error("InvalidArgument", "x-amz-copy-source must be bucket/key");
    const replace = req.headers["x-amz-metadata-directive"] === "REPLACE";
    const copied = await service.objects.copy(
        { bucket: raw.slice(0, slash), key: raw.slice(slash + 1).split("?")[0] },
        { bucket, key },
        replace ? { contentType: req.headers["content-type"], userMetadata: userMetadataOf(req.headers) } : undefined,
        (source) => {
            if (copyPreconditionFails(req.headers, source)) {
                throw new S3Error("PreconditionFailed", "a copy source precondition does not hold");
            }
        },
    );
    send(
        200,
        {},
        `<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><LastModified>${copied.lastModified?.toISOString() ?? ""}</LastModified>` +
            `<ETag>${xmlEscape(copied.etag)}</ETag></CopyObjectResult>`,
    );
}

export async function headObject(call: Call) {
    const info = await call.service.objects.head(call.bucket, call.key);
    if (preconditionsHold(call, info)) call.send(200, objectHeaders(info));
}

export async function getObject(call: Call) {
    const { req, res, bucket, key, service } = call;
    const rangeHeader = req.headers.range;
    const { info, body, range } = await service.objects.get(
        bucket,
        key,
        rangeHeader ? (length) => parseRange(rangeHeader, length) : undefined,
    );
    if (!preconditionsHold(call, info, body.source)) return;
    await sendPlaintext(res, range ? 206 : 200, objectHeaders(info, range), body);
}

export async function deleteObject({ bucket, key, service, send }: Call) {
    await service.objects.delete(bucket, key);
    send(204);
}

/** The headers of an object's answer: the whole object, or the range of it that is sent. */
function objectHeaders(info: ObjectInfo, range?: { start: number; end: number }): http.OutgoingHttpHeaders {
    return {
        "Content-Type": info.contentType ?? "binary/octet-stream",
        "Content-Length": range ? range.end - range.start + 1 : info.length,
        ETag: info.etag,
        "Accept-Ranges": "bytes",
        ...(info.lastModified ? { "Last-Modified": info.lastModified.toUTCString() } : {}),
        ...Object.fromEntries(Object.entries(info.userMetadata).map(([k, v]) => [`x-amz-meta-${k}`, v])),
        ...(range ? { "Content-Range": `bytes ${range.start}-${range.end}/${info.length}` } : {}),
    };
}

/** True if the conditional headers let the request go on; a 304 is answered here, a 412 thrown. */
function preconditionsHold({ req, send }: Call, info: ObjectInfo, body?: Readable): boolean {
    const fails = preconditionFails(req.headers, info);
    if (!fails) return true;
    body?.destroy();
    if (fails === 304) {
        send(304, { ETag: info.etag });
        return false;
    }
    throw new S3Error("PreconditionFailed", "a precondition does not hold");
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

export function userMetadataOf(headers: http.IncomingHttpHeaders): Record<string, string> {
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

/**
 * S3's copy conditions: if-match true with if-unmodified-since false, or if-none-match true (the ETag differs)
 * with if-modified-since false, still copy; any other failing condition is a 412.
 */
function copyPreconditionFails(
    headers: http.IncomingHttpHeaders,
    source: { etag: string; lastModified?: Date },
): boolean {
    const h = (name: string) => headers[`x-amz-copy-source-${name}`] as string | undefined;
    const matches = (list: string) => list.split(",").some((t) => t.trim() === "*" || t.trim() === source.etag);
    const modified = Math.floor((source.lastModified?.getTime() ?? 0) / 1000) * 1000;
    const ifMatch = h("if-match");
    const ifNoneMatch = h("if-none-match");
    const unmodifiedSince = Date.parse(h("if-unmodified-since") ?? "");
    const modifiedSince = Date.parse(h("if-modified-since") ?? "");
    if (ifMatch !== undefined) {
        if (!matches(ifMatch)) return true;
    } else if (unmodifiedSince < modified) {
        return true;
    }
    if (ifNoneMatch !== undefined) {
        if (matches(ifNoneMatch)) return true;
    } else if (modifiedSince >= modified) {
        return true;
    }
    return false;
}
