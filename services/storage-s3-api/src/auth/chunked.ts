// Decodes the aws-chunked bodies AWS SDKs send (x-amz-content-sha256: STREAMING-...), verifying each chunk's
// chained signature when the mode is signed, and a CRC32 trailer checksum when one is sent.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import * as zlib from "node:zlib";
import { S3Error } from "../errors";

const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");
const MAX_LINE = 4096;

export interface ChunkSigning {
    signingKey: Buffer;
    /** The request's own signature: the first link of the chain. */
    seedSignature: string;
    amzDate: string;
    scope: string;
}

type State = "header" | "data" | "data-end" | "trailer" | "done";

export class AwsChunkedDecoder extends Transform {
    private buffer: Buffer = Buffer.alloc(0);
    private state: State = "header";
    private remaining = 0;
    private chunkSignature = "";
    private chunkHash = createHash("sha256");
    private previousSignature: string;
    private crc = 0;
    private readonly trailers: Record<string, string> = {};

    constructor(
        private readonly signing: ChunkSigning | undefined,
        private readonly declaredTrailer: string | undefined,
    ) {
        super();
        this.previousSignature = signing?.seedSignature ?? "";
    }

    private line(): string | undefined {
        const end = this.buffer.indexOf("\r\n");
        if (end < 0) {
            if (this.buffer.length > MAX_LINE) throw new S3Error("IncompleteBody", "an aws-chunked line is too long");
            return undefined;
        }
        const text = this.buffer.subarray(0, end).toString("latin1");
        this.buffer = this.buffer.subarray(end + 2);
        return text;
    }

    private verifyChunk(dataHash: string): void {
        if (!this.signing) return;
        const stringToSign = [
            "AWS4-HMAC-SHA256-PAYLOAD",
            this.signing.amzDate,
            this.signing.scope,
            this.previousSignature,
            EMPTY_SHA256,
            dataHash,
        ].join("\n");
        const expected = createHmac("sha256", this.signing.signingKey).update(stringToSign).digest();
        const given = Buffer.from(this.chunkSignature, "hex");
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
            throw new S3Error("SignatureDoesNotMatch", "an aws-chunked chunk signature does not match");
        }
        this.previousSignature = this.chunkSignature;
    }

    private parse(): void {
        for (;;) {
            if (this.state === "header") {
                const header = this.line();
                if (header === undefined) return;
                const [size, ...ext] = header.split(";");
                if (!/^[0-9a-fA-F]{1,16}$/.test(size))
                    throw new S3Error("IncompleteBody", "malformed aws-chunked size");
                this.remaining = parseInt(size, 16);
                this.chunkSignature = ext.find((e) => e.startsWith("chunk-signature="))?.slice(16) ?? "";
                if (this.signing && !this.chunkSignature)
                    throw new S3Error("SignatureDoesNotMatch", "a chunk is not signed");
                this.chunkHash = createHash("sha256");
                if (this.remaining === 0) {
                    this.verifyChunk(EMPTY_SHA256);
                    this.state = "trailer";
                } else {
                    this.state = "data";
                }
            } else if (this.state === "data") {
                if (this.buffer.length === 0) return;
                const part = this.buffer.subarray(0, Math.min(this.remaining, this.buffer.length));
                this.buffer = this.buffer.subarray(part.length);
                this.remaining -= part.length;
                this.chunkHash.update(part);
                this.crc = zlib.crc32(part, this.crc);
                if (this.remaining === 0) {
                    this.verifyChunk(this.chunkHash.digest("hex"));
                    this.state = "data-end";
                }
                this.push(part);
            } else if (this.state === "data-end") {
                const end = this.line();
                if (end === undefined) return;
                if (end !== "") throw new S3Error("IncompleteBody", "aws-chunked data overruns its size");
                this.state = "header";
            } else if (this.state === "trailer") {
                const trailer = this.line();
                if (trailer === undefined) return;
                if (trailer === "") {
                    this.state = "done";
                    continue;
                }
                const colon = trailer.indexOf(":");
                this.trailers[trailer.slice(0, colon).trim().toLowerCase()] = trailer.slice(colon + 1).trim();
            } else {
                if (this.buffer.length)
                    throw new S3Error("IncompleteBody", "data after the end of an aws-chunked body");
                return;
            }
        }
    }

    override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
        this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
        try {
            this.parse();
            done();
        } catch (err) {
            done(err as Error);
        }
    }

    override _flush(done: TransformCallback): void {
        // A body may end right after the last chunk's header when no trailer follows.
        if (this.state === "trailer" && this.buffer.length === 0 && !this.declaredTrailer) this.state = "done";
        if (this.state !== "done") return done(new S3Error("IncompleteBody", "the aws-chunked body ended early"));
        const declared = this.declaredTrailer?.toLowerCase();
        if (declared && this.trailers[declared] === undefined) {
            return done(new S3Error("InvalidRequest", `the declared trailer ${declared} is missing`));
        }
        const crc32 = this.trailers["x-amz-checksum-crc32"];
        if (crc32 !== undefined) {
            const actual = Buffer.alloc(4);
            actual.writeUInt32BE(this.crc >>> 0);
            if (actual.toString("base64") !== crc32) {
                return done(new S3Error("InvalidRequest", "the body does not match its x-amz-checksum-crc32"));
            }
        }
        done();
    }
}
