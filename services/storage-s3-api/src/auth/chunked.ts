// Decodes the aws-chunked bodies AWS SDKs send (x-amz-content-sha256: STREAMING-...), verifying each chunk's
// chained signature when the mode is signed, and a CRC32 trailer checksum when one is sent.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import * as zlib from "node:zlib";
import { ChunkedFraming } from "../chunked-framing";
import { S3Error } from "../errors";

const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");

export interface ChunkSigning {
    signingKey: Buffer;
    /** The request's own signature: the first link of the chain. */
    seedSignature: string;
    amzDate: string;
    scope: string;
}

export class AwsChunkedDecoder extends Transform {
    private readonly framing = new ChunkedFraming(
        {
            chunk: (size, extensions) => this.onChunk(size, extensions),
            data: (piece, last) => this.onData(piece, last),
            trailer: (name, value) => (this.trailers[name] = value),
        },
        (what) => new S3Error("IncompleteBody", `the aws-chunked body has ${what}`),
    );
    private chunkSignature = "";
    private chunkHash = createHash("sha256");
    private previousSignature: string;
    private crc = 0;
    private readonly trailers: Record<string, string> = Object.create(null) as Record<string, string>;

    constructor(
        private readonly signing: ChunkSigning | undefined,
        private readonly declaredTrailer: string | undefined,
    ) {
        super();
        this.previousSignature = signing?.seedSignature ?? "";
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

    private onChunk(size: number, extensions: string[]): void {
        this.chunkSignature = extensions.find((e) => e.startsWith("chunk-signature="))?.slice(16) ?? "";
        if (this.signing && !this.chunkSignature) throw new S3Error("SignatureDoesNotMatch", "a chunk is not signed");
        this.chunkHash = createHash("sha256");
        if (size === 0) this.verifyChunk(EMPTY_SHA256);
    }

    /** A chunk's last piece goes on only once the chunk's signature checks out. */
    private onData(piece: Buffer, last: boolean): void {
        this.chunkHash.update(piece);
        this.crc = zlib.crc32(piece, this.crc);
        if (last) this.verifyChunk(this.chunkHash.digest("hex"));
        this.push(piece);
    }

    override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
        try {
            if (this.framing.feed(chunk)?.length) {
                throw new S3Error("IncompleteBody", "data after the end of an aws-chunked body");
            }
            done();
        } catch (err) {
            done(err as Error);
        }
    }

    override _flush(done: TransformCallback): void {
        // A body may end right after the last chunk's header when no trailer follows.
        const complete = this.framing.ended || (this.framing.atTrailers && !this.declaredTrailer);
        if (!complete) return done(new S3Error("IncompleteBody", "the aws-chunked body ended early"));
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
