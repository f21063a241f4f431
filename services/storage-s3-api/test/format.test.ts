import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as fc from "fast-check";
import { commitmentMatches, deriveObjectKeys, nameBinding } from "../src/format/keys";
import { PART_HEADER_BYTES, planPartsRange } from "../src/format/parts";
import {
    ciphertextLength,
    IntegrityError,
    type OpenRange,
    planRange,
    plaintextLength,
    SealStream,
    SegmentOpener,
    type SegmentStream,
    TAG_BYTES,
    wholeObject,
} from "../src/format/segments";

// Small segments so that sizes around S-1, S, S+1 and many segments stay cheap.
const S = 64;

function stream(objectId = randomBytes(16), dek = randomBytes(32)): SegmentStream {
    return { key: deriveObjectKeys(dek, objectId).data, objectId, part: 0, segmentSize: S };
}

/** Data in chunks of the given sizes, so segment boundaries fall inside and between chunks. */
function chunksOfSizes(data: Buffer, chunkSizes: number[] = [data.length || 1]): Buffer[] {
    const chunks: Buffer[] = [];
    for (let at = 0, i = 0; at < data.length; i++) {
        const n = Math.max(1, chunkSizes[i % chunkSizes.length]);
        chunks.push(data.subarray(at, at + n));
        at += n;
    }
    return chunks;
}

const chunked = (data: Buffer, chunkSizes?: number[]) => Readable.from(chunksOfSizes(data, chunkSizes));

/** The chunks a transform writes, as it wrote them. */
async function chunksOf(source: Readable, transform: Transform): Promise<Buffer[]> {
    const out: Buffer[] = [];
    await pipeline(source, transform, async (chunks: AsyncIterable<Buffer>) => {
        for await (const c of chunks) out.push(c);
    });
    return out;
}

const collect = async (source: Readable, transform: Transform) => Buffer.concat(await chunksOf(source, transform));

const seal = (s: SegmentStream, plain: Buffer, chunks?: number[]) => collect(chunked(plain, chunks), new SealStream(s));
/** Opens `sealed` fed in chunks: the plaintext released before it ended or failed, and the failure. */
function opening(s: SegmentStream, sealed: Buffer, range: OpenRange, chunks?: number[]) {
    const opener = new SegmentOpener(s, range);
    const released: Buffer[] = [];
    try {
        for (const chunk of chunksOfSizes(sealed, chunks)) released.push(...opener.push(chunk));
        opener.end();
        return { released: Buffer.concat(released), error: undefined };
    } catch (error) {
        return { released: Buffer.concat(released), error: error as Error };
    }
}

const open = (s: SegmentStream, sealed: Buffer, range: OpenRange, chunks?: number[]): Promise<Buffer> => {
    const { released, error } = opening(s, sealed, range, chunks);
    return error ? Promise.reject(error) : Promise.resolve(released);
};

const sizes = [0, 1, S - 1, S, S + 1, 2 * S - 1, 2 * S, 2 * S + 1, 5 * S, 5 * S + 7];

describe("pce1 format", () => {
    describe("round trip", () => {
        for (const size of sizes) {
            it(`${size} bytes`, async () => {
                const s = stream();
                const plain = randomBytes(size);
                const sealed = await seal(s, plain, [7, 64, 100]);
                assert.equal(sealed.length, ciphertextLength(size, S));
                assert.equal(plaintextLength(sealed.length, S), size);
                assert.deepEqual(await open(s, sealed, wholeObject(size, S), [13, 80]), plain);
            });
        }

        it("for random sizes and chunkings (property)", async () => {
            await fc.assert(
                fc.asyncProperty(
                    fc.integer({ min: 0, max: 8 * S + 3 }),
                    fc.array(fc.integer({ min: 1, max: 3 * S }), { minLength: 1, maxLength: 5 }),
                    async (size, chunks) => {
                        const s = stream();
                        const plain = randomBytes(size);
                        const sealed = await seal(s, plain, chunks);
                        assert.deepEqual(await open(s, sealed, wholeObject(size, S), chunks), plain);
                    },
                ),
                { numRuns: 200 },
            );
        });
    });

    it("seals into half-MiB buffers, not a piece per segment or per chunk read", async () => {
        const s = { ...stream(), segmentSize: 64 * 1024 };
        const plain = randomBytes(3 * 1024 * 1024 + 5);
        const sizes = (await chunksOf(chunked(plain, [65536, 1000]), new SealStream(s))).map((c) => c.length);
        assert.ok(sizes.length <= 7, `${sizes.length} writes`);
        assert.ok(
            sizes.slice(0, -1).every((n) => n >= 512 * 1024),
            `writes of ${sizes.join(", ")} bytes`,
        );
    });

    it("opens each segment, the last one too, in the read that completes it", async () => {
        const s = { ...stream(), segmentSize: 64 * 1024 };
        const plain = randomBytes(2 * s.segmentSize + 5);
        const sealed = await seal(s, plain);
        const opener = new SegmentOpener(s, wholeObject(plain.length, s.segmentSize));
        const one = s.segmentSize + TAG_BYTES;
        assert.deepEqual(opener.push(sealed.subarray(0, one - 1)), []);
        const first = Buffer.concat(opener.push(sealed.subarray(one - 1, one + 1)));
        assert.ok(first.equals(plain.subarray(0, s.segmentSize)));
        // The final segment, without waiting for the end of the input.
        const rest = Buffer.concat(opener.push(sealed.subarray(one + 1)));
        assert.ok(rest.equals(plain.subarray(s.segmentSize)));
        assert.ok(opener.done);
        opener.end();
    });

    it("rejects ciphertext lengths no plaintext encrypts to", () => {
        assert.equal(plaintextLength(TAG_BYTES - 1, S), undefined);
        assert.equal(plaintextLength(S + TAG_BYTES + TAG_BYTES, S), undefined); // an empty non-first segment
        assert.equal(plaintextLength(TAG_BYTES, S), 0);
    });

    describe("range reads decrypt only the segments they need", () => {
        it("for every range of a 5.1-segment object", async () => {
            const s = stream();
            const size = 5 * S + 7;
            const plain = randomBytes(size);
            const sealed = await seal(s, plain);
            for (const [start, end] of [
                [0, 0],
                [S - 1, S],
                [S, 2 * S - 1],
                [3, 4 * S + 2],
                [size - 1, size - 1],
                [5 * S, size - 1],
            ]) {
                const r = planRange(start, end, size, S);
                assert.ok(r.cipherEnd - r.cipherStart + 1 <= (r.lastSegment - r.firstSegment + 1) * (S + TAG_BYTES));
                const slice = sealed.subarray(r.cipherStart, r.cipherEnd + 1);
                assert.deepEqual(await open(s, slice, r), plain.subarray(start, end + 1), `bytes ${start}-${end}`);
            }
        });

        it("a 1-byte read of a large object fetches one segment", () => {
            const r = planRange(1_000_000, 1_000_000, 1 << 30, 64 * 1024);
            assert.equal(r.cipherEnd - r.cipherStart + 1, 64 * 1024 + TAG_BYTES);
        });

        it("refuses ranges outside the object", () => {
            assert.throws(() => planRange(0, 10, 10, S), RangeError);
            assert.throws(() => planRange(5, 4, 10, S), RangeError);
        });
    });

    describe("tampering gives an error, never wrong bytes", () => {
        const size = 3 * S + 5;
        let s: SegmentStream;
        let plain: Buffer;
        let sealed: Buffer;
        before(async () => {
            s = stream();
            plain = randomBytes(size);
            sealed = await seal(s, plain);
        });
        /**
         * Refused, and nothing released from segment `firstBad` on: what came out before the failure is whole,
         * authenticated segments of the plaintext — fed at once, per segment, and in odd chunks.
         */
        const refuse = (bytes: Buffer, firstBad: number, range: OpenRange = wholeObject(size, S)) => {
            for (const chunks of [undefined, [S + TAG_BYTES], [13, 80]]) {
                const { released, error } = opening(s, bytes, range, chunks);
                assert.ok(error instanceof IntegrityError, `not refused: ${String(error)}`);
                assert.ok(
                    released.length <= firstBad * S,
                    `${released.length} bytes released before segment ${firstBad}`,
                );
                assert.ok(
                    released.equals(plain.subarray(0, released.length)),
                    "released bytes that are not the plaintext",
                );
            }
        };

        it("a flipped bit in any byte", () => {
            for (let at = 0; at < sealed.length; at += 7) {
                const bad = Buffer.from(sealed);
                bad[at] ^= 0x01;
                refuse(bad, Math.floor(at / (S + TAG_BYTES)));
            }
        });

        it("truncation at every segment boundary and mid-segment", () => {
            for (const cut of [0, 1, S + TAG_BYTES, 2 * (S + TAG_BYTES), 2 * (S + TAG_BYTES) + 3, sealed.length - 1]) {
                refuse(sealed.subarray(0, cut), Math.floor(cut / (S + TAG_BYTES)));
            }
        });

        it("truncation to whole segments, even when the reader expects fewer", () => {
            // The first two segments alone are authentic, but neither is final.
            const two = sealed.subarray(0, 2 * (S + TAG_BYTES));
            refuse(two, 1, wholeObject(2 * S, S));
        });

        it("extension", () => {
            // Every segment is authentic here: they may be out before the extra bytes are seen.
            refuse(Buffer.concat([sealed, randomBytes(1)]), 4);
            refuse(Buffer.concat([sealed, sealed.subarray(0, S + TAG_BYTES)]), 4);
        });

        it("swapped segments within the object", () => {
            const a = sealed.subarray(0, S + TAG_BYTES);
            const b = sealed.subarray(S + TAG_BYTES, 2 * (S + TAG_BYTES));
            refuse(Buffer.concat([b, a, sealed.subarray(2 * (S + TAG_BYTES))]), 0);
        });

        it("a segment of another object under the same data key", async () => {
            // Same DEK, other object id: other keys and other AAD.
            const other = stream(randomBytes(16));
            const foreign = await seal(other, randomBytes(size));
            const mixed = Buffer.concat([foreign.subarray(0, S + TAG_BYTES), sealed.subarray(S + TAG_BYTES)]);
            refuse(mixed, 0);
        });

        it("the whole body of another object", async () => {
            refuse(await seal(stream(), randomBytes(size)), 0);
        });
    });

    describe("keys", () => {
        it("differ per object and commit to the data key", () => {
            const dek = randomBytes(32);
            const a = deriveObjectKeys(dek, randomBytes(16));
            const b = deriveObjectKeys(dek, randomBytes(16));
            assert.notDeepEqual(a.data, b.data);
            assert.ok(commitmentMatches(a, a.commitment));
            assert.ok(!commitmentMatches(a, b.commitment));
            assert.ok(!commitmentMatches(deriveObjectKeys(randomBytes(32), randomBytes(16)), a.commitment));
        });

        it("are derived once per data key and object, and are then the same as derived afresh", () => {
            const dek = randomBytes(32);
            const [one, two] = [randomBytes(16), randomBytes(16)];
            const first = deriveObjectKeys(dek, one);
            assert.equal(deriveObjectKeys(dek, Buffer.from(one)), first, "the second derivation is the kept one");
            assert.deepEqual(deriveObjectKeys(dek, two), deriveObjectKeys(Buffer.from(dek), two));
            assert.deepEqual(deriveObjectKeys(dek, one), first);
            assert.ok(Object.isFrozen(first));
        });

        it("bind an object to its bucket and key", () => {
            const keys = deriveObjectKeys(randomBytes(32), randomBytes(16));
            const bound = nameBinding(keys, "photos", "2026/summer.jpg");
            assert.deepEqual(nameBinding(keys, "photos", "2026/summer.jpg"), bound);
            assert.notDeepEqual(nameBinding(keys, "photos", "2026/summer.jpeg"), bound);
            assert.notDeepEqual(nameBinding(keys, "photos2", "026/summer.jpg"), bound);
        });

        it("refuse malformed inputs", () => {
            assert.throws(() => deriveObjectKeys(randomBytes(16), randomBytes(16)), RangeError);
            assert.throws(() => deriveObjectKeys(randomBytes(32), randomBytes(8)), RangeError);
        });
    });

    it("never reuses a (key, nonce) pair: keys are unique per object over 10k objects", () => {
        const dek = randomBytes(32);
        const seen = new Set<string>();
        for (let i = 0; i < 10_000; i++) seen.add(deriveObjectKeys(dek, randomBytes(16)).data.toString("hex"));
        assert.equal(seen.size, 10_000);
    });
});

describe("pce1 multipart ranges", () => {
    it("fetch only the segments a range needs, across parts", () => {
        const S64 = 64 * 1024;
        const table = [
            { part: 1, salt: Buffer.alloc(16), plainLength: 5 * 1024 * 1024 },
            { part: 2, salt: Buffer.alloc(16), plainLength: 100_003 },
        ];
        const oneByte = planPartsRange(table, S64, 5 * 1024 * 1024 + 10, 5 * 1024 * 1024 + 10);
        assert.equal(oneByte.cipherEnd - oneByte.cipherStart + 1, S64 + TAG_BYTES);
        const across = planPartsRange(table, S64, 5 * 1024 * 1024 - 1, 5 * 1024 * 1024);
        // The last segment of part 1, part 2's header and its first segment.
        assert.equal(across.cipherEnd - across.cipherStart + 1, 2 * (S64 + TAG_BYTES) + PART_HEADER_BYTES);
        assert.throws(() => planPartsRange(table, S64, 6_000_000, 6_000_000), RangeError);
    });
});
