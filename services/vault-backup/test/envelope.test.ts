// The encrypted form of a backup: it opens to the same bytes and time under its key, and anything else — a
// cut at any chunk boundary or inside a chunk, any flipped byte (header included), another key, a reordered
// chunk — is refused as an EnvelopeError.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { EnvelopeError, open, seal, sealedLength } from "../src/envelope";

const CHUNK = 1000;
const key = randomBytes(32);
const takenAt = new Date("2026-12-07T01:00:00.123Z");

describe("vault-backup's encrypted format", () => {
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17]) {
        it(`opens what it sealed, ${size} bytes, and states its length beforehand`, () => {
            const plain = randomBytes(size);
            const sealed = Buffer.concat([...seal(plain, key, takenAt, CHUNK)]);
            assert.equal(sealed.length, sealedLength(size, CHUNK));
            const opened = open(sealed, key);
            assert.ok(opened.plain.equals(plain));
            assert.equal(opened.takenAt.toISOString(), takenAt.toISOString());
        });
    }

    const plain = randomBytes(3 * CHUNK + 17);
    const sealed = Buffer.concat([...seal(plain, key, takenAt, CHUNK)]);
    const refused = (bytes: Buffer, withKey = key) =>
        assert.throws(
            () => open(bytes, withKey),
            (err: Error) => err instanceof EnvelopeError,
        );

    it("refuses it cut off anywhere: at each chunk's end and inside chunks", () => {
        for (let cut = 0; cut < sealed.length; cut += 97) refused(sealed.subarray(0, cut));
        for (let chunk = 1; chunk <= 3; chunk++) refused(sealed.subarray(0, 54 + chunk * (CHUNK + 16)));
    });

    it("refuses any flipped byte, in the header or in a chunk", () => {
        for (let at = 0; at < sealed.length; at += 31) {
            const changed = Buffer.from(sealed);
            changed[at] ^= 0x01;
            refused(changed);
        }
    });

    it("refuses another key and chunks in another order", () => {
        refused(sealed, randomBytes(32));
        const [header, first] = [sealed.subarray(0, 54), sealed.subarray(54, 54 + CHUNK + 16)];
        const swapped = Buffer.concat([
            header,
            sealed.subarray(54 + CHUNK + 16, 54 + 2 * (CHUNK + 16)),
            first,
            sealed.subarray(54 + 2 * (CHUNK + 16)),
        ]);
        refused(swapped);
    });
});
