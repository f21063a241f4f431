// The chunked framing both decoders stand on, fed whole and cut at every byte.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ChunkedFraming } from "../src/chunked-framing";

interface Decoded {
    chunks: [number, string[]][];
    data: Buffer;
    /** Which pieces were flagged as completing a chunk, by their end offset in `data`. */
    lastAt: number[];
    trailers: [string, string][];
    after?: Buffer;
    ended: boolean;
}

/** Feeds `wire` in pieces cut at `cuts`, collecting every event. */
function decode(wire: Buffer, cuts: number[] = []): Decoded {
    const pieces: Buffer[] = [];
    const out: Decoded = { chunks: [], data: Buffer.alloc(0), lastAt: [], trailers: [], ended: false };
    const framing = new ChunkedFraming(
        {
            chunk: (size, extensions) => out.chunks.push([size, extensions]),
            data: (piece, last) => {
                pieces.push(piece);
                if (last) out.lastAt.push(pieces.reduce((n, p) => n + p.length, 0));
            },
            trailer: (name, value) => out.trailers.push([name, value]),
        },
        (what) => new Error(`the body has ${what}`),
    );
    let from = 0;
    for (const to of [...cuts, wire.length]) {
        const after = framing.feed(wire.subarray(from, to));
        if (after !== undefined) out.after = Buffer.concat([out.after ?? Buffer.alloc(0), after]);
        from = to;
    }
    out.data = Buffer.concat(pieces);
    out.ended = framing.ended;
    return out;
}

const a = randomBytes(300);
const b = randomBytes(17);
const wire = Buffer.concat([
    Buffer.from(`12c;chunk-signature=abc;x=1\r\n`),
    a,
    Buffer.from("\r\n11\r\n"),
    b,
    Buffer.from("\r\n0\r\nX-Amz-Checksum-CRC32: AAAAAA==\r\nexpires:0\r\n\r\nNEXT"),
]);

describe("chunked framing", () => {
    it("hands on data, sizes, extensions and trailers, and the bytes after the body", () => {
        assert.deepEqual(decode(wire), {
            chunks: [
                [300, ["chunk-signature=abc", "x=1"]],
                [17, []],
                [0, []],
            ],
            data: Buffer.concat([a, b]),
            lastAt: [300, 317],
            trailers: [
                ["x-amz-checksum-crc32", "AAAAAA=="],
                ["expires", "0"],
            ],
            after: Buffer.from("NEXT"),
            ended: true,
        });
    });

    it("reads the same when the bytes arrive cut at any place, or one by one", () => {
        const whole = decode(wire);
        for (let cut = 1; cut < wire.length; cut++) assert.deepEqual(decode(wire, [cut]), whole, `cut at ${cut}`);
        assert.deepEqual(
            decode(
                wire,
                Array.from({ length: wire.length - 1 }, (_, i) => i + 1),
            ),
            whole,
        );
    });

    it("hands data on as slices of what it was fed, not copies", () => {
        const seen: Buffer[] = [];
        const framing = new ChunkedFraming(
            { chunk: () => {}, data: (piece) => seen.push(piece), trailer: () => {} },
            (what) => new Error(what),
        );
        framing.feed(wire);
        assert.ok(seen.every((piece) => piece.buffer === wire.buffer));
    });

    it("says when a body has ended or may end after its last chunk, and only then", () => {
        const framing = new ChunkedFraming(
            { chunk: () => {}, data: () => {}, trailer: () => {} },
            (what) => new Error(what),
        );
        assert.equal(framing.feed(Buffer.from("3\r\nabc\r\n")), undefined);
        assert.deepEqual([framing.atTrailers, framing.ended], [false, false]);
        framing.feed(Buffer.from("0\r\n"));
        assert.deepEqual([framing.atTrailers, framing.ended], [true, false]);
        framing.feed(Buffer.from("x-a"));
        assert.deepEqual([framing.atTrailers, framing.ended], [false, false]);
        assert.deepEqual(framing.feed(Buffer.from(": 1\r\n\r\n")), Buffer.alloc(0));
        assert.equal(framing.ended, true);
    });

    for (const [what, bad] of [
        ["a chunk line not ended by CRLF", "5\nhello\r\n0\r\n\r\n"],
        ["a chunk line not ended by CRLF", "5\r\nhello\n0\r\n\r\n"],
        ["a malformed chunk size", "\r\n"],
        ["a malformed chunk size", "zz\r\nhello\r\n"],
        ["a malformed chunk size", "+5\r\nhello\r\n"],
        ["a malformed chunk size", "12345678901234567\r\n"],
        ["a malformed chunk size", "ffffffffffffffff\r\n"],
        ["a chunk longer than its size", "3\r\nhello\r\n"],
        ["a malformed trailer", "0\r\nno colon\r\n\r\n"],
        ["a chunk line longer than 4 KiB", `1;${"x".repeat(4096)}`],
    ]) {
        it(`refuses ${what}: ${JSON.stringify(bad.slice(0, 24))}`, () => {
            const wire = Buffer.from(bad);
            for (const cuts of [[], [1], [wire.length - 1]]) {
                assert.throws(() => decode(wire, cuts), new Error(`the body has ${what}`));
            }
        });
    }
});
