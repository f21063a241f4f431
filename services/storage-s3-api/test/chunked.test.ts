import * as assert from "node:assert/strict";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { AwsChunkedDecoder, type ChunkSigning } from "../src/auth/chunked";
import { signingKey } from "../src/auth/sigv4";
import { S3Error } from "../src/errors";

async function decode(body: Buffer, signing?: ChunkSigning, trailer?: string): Promise<Buffer> {
    const out: Buffer[] = [];
    await pipeline(
        Readable.from([body.subarray(0, 7), body.subarray(7)]),
        new AwsChunkedDecoder(signing, trailer),
        async (s: AsyncIterable<Buffer>) => {
            for await (const c of s) out.push(c);
        },
    );
    return Buffer.concat(out);
}

// AWS's published example of a chunked upload (S3 documentation, "Transferring payload in multiple chunks"):
// 66560 bytes of 'a' in chunks of 65536 and 1024, with the seed and chunk signatures AWS lists.
const example = {
    signing: {
        signingKey: signingKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3"),
        seedSignature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        amzDate: "20130524T000000Z",
        scope: "20130524/us-east-1/s3/aws4_request",
    },
    chunks: [
        [65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"],
        [1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"],
        [0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"],
    ] as const,
};

function exampleBody(tamper = false): Buffer {
    return Buffer.concat(
        example.chunks.map(([size, sig], i) => {
            const data = Buffer.alloc(size, "a");
            if (tamper && i === 1) data[10] = 0x62;
            return Buffer.concat([
                Buffer.from(`${size.toString(16)};chunk-signature=${sig}\r\n`),
                data,
                Buffer.from("\r\n"),
            ]);
        }),
    );
}

const unsignedWithTrailer = (data: Buffer, crc = zlib.crc32(data)) => {
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc >>> 0);
    return Buffer.concat([
        Buffer.from(`${data.length.toString(16)}\r\n`),
        data,
        Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${sum.toString("base64")}\r\n\r\n`),
    ]);
};

const code = (c: string) => (err: unknown) => err instanceof S3Error && err.code === c;

describe("aws-chunked bodies", () => {
    it("decodes AWS's signed example and verifies its chunk signatures", async () => {
        assert.deepEqual(await decode(exampleBody(), example.signing), Buffer.alloc(66560, "a"));
    });

    it("refuses a changed chunk", async () => {
        await assert.rejects(decode(exampleBody(true), example.signing), code("SignatureDoesNotMatch"));
    });

    it("refuses an unsigned chunk where signatures are required", async () => {
        await assert.rejects(
            decode(unsignedWithTrailer(Buffer.from("hello")), example.signing),
            code("SignatureDoesNotMatch"),
        );
    });

    it("decodes an unsigned body and checks its CRC32 trailer", async () => {
        const data = Buffer.from("family photos ".repeat(1000));
        assert.deepEqual(await decode(unsignedWithTrailer(data), undefined, "x-amz-checksum-crc32"), data);
        await assert.rejects(
            decode(unsignedWithTrailer(data, 1234), undefined, "x-amz-checksum-crc32"),
            code("InvalidRequest"),
        );
    });

    it("refuses truncated and overlong bodies", async () => {
        const whole = unsignedWithTrailer(Buffer.from("hello world"));
        await assert.rejects(decode(whole.subarray(0, 10), undefined, "x-amz-checksum-crc32"), code("IncompleteBody"));
        await assert.rejects(decode(Buffer.concat([whole, Buffer.from("x")])), code("IncompleteBody"));
        await assert.rejects(decode(Buffer.from("zz\r\nhello\r\n")), code("IncompleteBody"));
    });
});
