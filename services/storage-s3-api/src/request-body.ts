// Request bodies as the handlers read them: an upload streamed and checked against its declared length and
// signed hash (plain, signed or aws-chunked), and a small XML body read whole.
import { createHash } from "node:crypto";
import type * as http from "node:http";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { AwsChunkedDecoder } from "./auth/chunked";
import type { Verified } from "./auth/sigv4";
import type { Call } from "./call";
import { S3Error } from "./errors";

const chunkedModes = new Set([
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
]);

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

/**
 * The plaintext body of an upload, whatever its encoding (plain, signed hash, aws-chunked), checked against
 * its declared length and signed hash as it streams. `failure()` is the first error the stream hit.
 */
export function uploadBody(
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

/**
 * Receives a PUT's body (an object's or a part's) once its headers passed, as `store` streams it on, and
 * answers with the ETag `store` gives; a failure of the body itself is what the client is told.
 */
export async function receiveUpload(call: Call, store: (body: Readable, length: number) => Promise<string>) {
    const ifNoneMatch = call.req.headers["if-none-match"];
    if (ifNoneMatch !== undefined && ifNoneMatch !== "*") {
        throw new S3Error("NotImplemented", "If-None-Match on PUT takes only *");
    }
    const upload = uploadBody(call.req, call.auth, call.service.maxObjectSize);
    call.proceed();
    try {
        call.send(200, { ETag: await store(upload.body, upload.length) });
    } catch (err) {
        throw upload.failure() ?? err;
    }
}

/** A request body of at most 1 MiB, checked against its signed SHA-256 when there is one. */
export async function readSmallBody(req: http.IncomingMessage, payloadHash: string): Promise<Buffer> {
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
