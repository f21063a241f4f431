// Values made ahead of their taker: each one to one taker, never stale, never a stale failure.
import * as assert from "node:assert/strict";
import { MadeAhead } from "../src/ahead";

/** A maker that numbers what it makes; `fail` makes the next makings fail. */
function counter() {
    const state = { made: 0, fail: 0 };
    const make = async () => {
        const n = ++state.made;
        await new Promise((r) => setImmediate(r));
        if (state.fail > 0) {
            state.fail--;
            throw new Error(`making ${n} failed`);
        }
        return n;
    };
    return { state, make };
}

describe("values made ahead", () => {
    it("makes one value per take once the first is taken, each going to one taker", async () => {
        const { state, make } = counter();
        const ahead = new MadeAhead(make, 10_000);
        assert.equal(state.made, 0, "nothing is made before the first take");
        assert.equal(await ahead.take(), 2, "the first taker waits for its own making");
        assert.equal(state.made, 2);
        const taken = [];
        for (let i = 0; i < 5; i++) taken.push(await ahead.take());
        assert.deepEqual(taken, [1, 3, 4, 5, 6]);
        assert.equal(state.made, 7);
    });

    it("gives concurrent takers distinct values", async () => {
        const { make } = counter();
        const ahead = new MadeAhead(make, 10_000);
        const taken = await Promise.all(Array.from({ length: 20 }, () => ahead.take()));
        assert.equal(new Set(taken).size, 20);
    });

    it("does not hand out a value that waited longer than its maximum age", async () => {
        const { state, make } = counter();
        let now = 0;
        const ahead = new MadeAhead(make, 1000, () => now);
        await ahead.take(); // value 1 now waits
        now = 1000;
        assert.equal(await ahead.take(), 1, "at its maximum age it is still handed out");
        now = 2001;
        assert.equal(await ahead.take(), 5, "one older (3) is dropped for a fresh one");
        assert.equal(state.made, 5);
    });

    it("answers a taker with a fresh making when the one made ahead failed", async () => {
        const { state, make } = counter();
        const ahead = new MadeAhead(make, 10_000);
        state.fail = 2;
        await assert.rejects(ahead.take(), /making 2 failed/, "the taker is told its own making's failure");
        assert.equal(await ahead.take(), 4, "value 1 failed while it waited: the taker gets a fresh one");
        assert.equal(state.made, 4);
    });
});
