// The pure parts, without the chain: the order-preserving encoding, page fences, merging.
import * as assert from "node:assert/strict";
import fc from "fast-check";
import { mergeSorted } from "../src/indexes";
import { comparePairs, cutPages, type Pair, pagesFor, inRange, type ValueRange } from "../src/pages";
import { encodeValue, type Scalar } from "../src/values";

const rank = (v: Scalar) => (v === null ? 0 : v === false ? 1 : v === true ? 2 : typeof v === "number" ? 3 : 4);
/** The documented order, written independently: type, then numbers by value and strings by UTF-8 bytes. */
function expectedOrder(a: Scalar, b: Scalar): number {
    if (rank(a) !== rank(b)) return rank(a) - rank(b);
    if (typeof a === "number" && typeof b === "number") return a === b ? 0 : a < b ? -1 : 1;
    if (typeof a === "string" && typeof b === "string") return Buffer.compare(Buffer.from(a), Buffer.from(b));
    return 0;
}

const scalar = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.string({ unit: "binary" }),
);

describe("storage-kv-api encoding and pages", () => {
    it("encodes scalars so that string order is value order", () => {
        fc.assert(
            fc.property(scalar, scalar, (a, b) => {
                const [ea, eb] = [encodeValue(a), encodeValue(b)];
                const got = ea === eb ? 0 : ea < eb ? -1 : 1;
                assert.equal(got, Math.sign(expectedOrder(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
            }),
            { numRuns: 2000 },
        );
        assert.equal(encodeValue(-0), encodeValue(0));
    });

    it("finds exactly the pages that hold a range, by their fences", () => {
        fc.assert(
            fc.property(
                fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.constantFrom("a", "b", "c")), {
                    selector: ([v, k]) => `${v}/${k}`,
                }),
                fc.integer({ min: -1, max: 41 }),
                fc.integer({ min: -1, max: 41 }),
                fc.boolean(),
                fc.boolean(),
                (raw, x, y, lowOpen, highOpen) => {
                    const pairs = raw.map(([v, k]): Pair => [encodeValue(v), k]).sort(comparePairs);
                    const pages = cutPages(pairs, 60).map((body, i) => ({
                        obj: String(i),
                        first: body[0],
                        last: body[body.length - 1],
                        count: body.length,
                        body,
                    }));
                    const range: ValueRange = {
                        low: encodeValue(Math.min(x, y)),
                        lowOpen,
                        high: encodeValue(Math.max(x, y)),
                        highOpen,
                    };
                    const chosen = pagesFor(pages, range).flatMap((p) => (p as (typeof pages)[0]).body);
                    const wanted = pairs.filter((p) => inRange(range, p[0]));
                    assert.deepEqual(
                        chosen.filter((p) => inRange(range, p[0])),
                        wanted,
                    );
                    assert.ok(pages.every((p) => JSON.stringify(p.body).length <= 60 || p.body.length === 1));
                },
            ),
            { numRuns: 500 },
        );
    });

    it("merges two sorted lists into one without duplicates", () => {
        const pair = fc.tuple(fc.string({ maxLength: 2 }), fc.string({ maxLength: 2 })) as fc.Arbitrary<Pair>;
        fc.assert(
            fc.property(fc.array(pair), fc.array(pair), (a, b) => {
                const sa = [...new Map(a.map((p) => [p.join("\0"), p])).values()].sort(comparePairs);
                const sb = [...new Map(b.map((p) => [p.join("\0"), p])).values()].sort(comparePairs);
                const expected = [...new Map([...sa, ...sb].map((p) => [p.join("\0"), p])).values()].sort(comparePairs);
                assert.deepEqual(mergeSorted(sa, sb), expected);
            }),
        );
    });
});
