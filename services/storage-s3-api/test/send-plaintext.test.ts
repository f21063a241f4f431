// A GET's answer as sendPlaintext writes it, to a real HTTP client over loopback: the backend's body is a stream
// the test feeds, so when each byte reaches the client can be told apart from when it was read.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { deriveObjectKeys } from "../src/format/keys";
import {
    sealAll,
    sealSegment,
    SegmentOpener,
    type SegmentStream,
    TAG_BYTES,
    wholeObject,
} from "../src/format/segments";
import { sendPlaintext } from "../src/send-plaintext";

const S = 64 * 1024;
const SEALED = S + TAG_BYTES;

function segmentStream(): SegmentStream {
    const objectId = randomBytes(16);
    return { key: deriveObjectKeys(randomBytes(32), objectId).data, objectId, part: 0, segmentSize: S };
}

interface Served {
    url: string;
    /** What sendPlaintext settled with. */
    outcome: Promise<unknown>;
    close(): Promise<void>;
}

/** An HTTP server that answers one GET with `source` opened as an object of `length` plaintext bytes. */
async function serve(s: SegmentStream, length: number, source: Readable): Promise<Served> {
    let settle: (v: unknown) => void = () => {};
    const outcome = new Promise((resolve) => (settle = resolve));
    const server = http.createServer((_req, res) => {
        sendPlaintext(
            res,
            200,
            { "Content-Length": length },
            { source, opener: new SegmentOpener(s, wholeObject(length, S)) },
        ).then(
            () => settle("sent"),
            (err: unknown) => {
                settle(err);
                res.writeHead(500).end();
            },
        );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        outcome,
        close: () => {
            server.closeAllConnections();
            return new Promise((resolve) => server.close(() => resolve()));
        },
    };
}

/** A GET whose body the test reads as it arrives: what came, and whether the answer ended whole or was cut. */
function get(url: string) {
    const received: Buffer[] = [];
    let response: http.IncomingMessage | undefined;
    let ended: (how: "whole" | "cut") => void = () => {};
    const end = new Promise<"whole" | "cut">((resolve) => (ended = resolve));
    const headers = new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(url, (res) => {
            response = res;
            res.on("data", (chunk: Buffer) => received.push(chunk));
            res.on("end", () => ended(res.complete ? "whole" : "cut"));
            res.on("error", () => ended("cut"));
            res.on("aborted", () => ended("cut"));
            resolve(res);
        }).on("error", reject);
    });
    return { headers, ended: end, body: () => Buffer.concat(received), response: () => response };
}

/** One GET of `plain`, sealed: `check` writes the sealed bytes (its own copy) to the backend body as it pleases. */
async function feedByHand(
    plain: Buffer,
    check: (t: { sealed: Buffer; source: PassThrough; client: ReturnType<typeof get> }) => Promise<void>,
): Promise<void> {
    const s = segmentStream();
    const sealed = Buffer.concat(sealAll(s, plain));
    const source = new PassThrough();
    const served = await serve(s, plain.length, source);
    try {
        await check({ sealed, source, client: get(served.url) });
    } finally {
        await served.close();
    }
}

describe("sendPlaintext", () => {
    it("sends the headers before the first segment is complete, then each segment as it opens", async () => {
        const plain = randomBytes(3 * S);
        await feedByHand(plain, async ({ sealed, source, client }) => {
            source.write(sealed.subarray(0, SEALED / 2));
            const first = await Promise.race([client.headers.then(() => "headers"), sleep(2000, "no headers")]);
            assert.equal(first, "headers", "the headers waited for the first segment");
            assert.equal(client.response()?.statusCode, 200);
            source.write(sealed.subarray(SEALED / 2, SEALED + 10));
            // The first segment reaches the client while the second is still incomplete.
            for (let i = 0; i < 100 && client.body().length < S; i++) await sleep(20);
            assert.ok(client.body().equals(plain.subarray(0, S)), `${client.body().length} bytes arrived`);
            source.end(sealed.subarray(SEALED + 10));
            assert.equal(await client.ended, "whole");
            assert.ok(client.body().equals(plain));
        });
    });

    it("an answer of one segment: the headers wait for it and go out with it", async () => {
        const plain = randomBytes(4096);
        await feedByHand(plain, async ({ sealed, source, client }) => {
            source.write(sealed.subarray(0, 4000));
            const first = await Promise.race([client.headers.then(() => "headers"), sleep(300, "no headers")]);
            assert.equal(first, "no headers", "the headers went out alone, before the only segment");
            source.end(sealed.subarray(4000));
            assert.equal(await client.ended, "whole");
            assert.ok(client.body().equals(plain));
        });
    });

    it("a tampered segment: the client gets the segments before it, none of its bytes, then a cut or an error", async () => {
        const plain = randomBytes(6 * S);
        for (const bad of [0, 3, 5]) {
            await feedByHand(plain, async ({ sealed, source, client }) => {
                sealed[bad * SEALED + 100] ^= 0x01;
                // Segment by segment, so earlier ones are out before the bad one arrives.
                for (let i = 0; i < 6; i++) {
                    source.write(sealed.subarray(i * SEALED, (i + 1) * SEALED));
                    await sleep(10);
                }
                source.end();
                // Failing before anything was sent, the answer is an error; after, the connection is cut.
                const ended = await client.ended;
                if (bad === 0) assert.equal(client.response()?.statusCode, 500);
                else assert.equal(ended, "cut", `segment ${bad}`);
                assert.ok(
                    client.body().equals(plain.subarray(0, bad * S)),
                    `segment ${bad}: ${client.body().length} bytes reached the client`,
                );
            });
        }
    });

    it("a small object that does not open: an error answer, no byte of it sent", async () => {
        const s = segmentStream();
        const plain = randomBytes(4096);
        const sealed = Buffer.concat(sealAll(s, plain));
        sealed[10] ^= 0x01;
        const served = await serve(s, plain.length, Readable.from([sealed]));
        try {
            const res = await fetch(served.url);
            assert.equal(res.status, 500);
            assert.equal((await res.arrayBuffer()).byteLength, 0);
            assert.match(String(await served.outcome), /IntegrityError|failed authentication/);
        } finally {
            await served.close();
        }
    });

    it("reads the backend no faster than the client takes the plaintext", async () => {
        const s = segmentStream();
        const segments = 1024; // 64 MiB
        const plainSegment = randomBytes(S);
        let produced = 0;
        const source = new Readable({
            read() {
                const i = produced++;
                this.push(i < segments ? Buffer.concat(sealSegment(s, i, i === segments - 1, [plainSegment])) : null);
            },
        });
        const served = await serve(s, segments * S, source);
        try {
            const client = get(served.url);
            const res = await client.headers;
            res.pause();
            await sleep(500);
            // Loopback socket buffers hold a few MiB; the rest must still be at the backend.
            assert.ok(produced < 256, `${produced} of ${segments} segments read while the client read nothing`);
            res.resume();
            assert.equal(await client.ended, "whole");
            assert.equal(produced, segments + 1);
        } finally {
            await served.close();
        }
    });
});
