/**
 * Keeps one value made ahead of the call that takes it, so that call does not wait for the making (for a
 * new object's data key: a round trip to Vault). Each value goes to exactly one taker, and each take starts
 * the next one, so values are made one per take once the first is taken. A value that waited longer than
 * `maxAgeMs`, or whose making failed, is not handed out: the taker waits for a freshly made one instead, so
 * a failure seen by a taker is never an old one.
 */
export class MadeAhead<T> {
    private ready?: { since: number; value: Promise<T> };

    constructor(
        private readonly make: () => Promise<T>,
        private readonly maxAgeMs: number,
        private readonly now: () => number = Date.now,
    ) {}

    async take(): Promise<T> {
        const ready = this.ready;
        this.ready = this.start();
        if (ready && this.now() - ready.since <= this.maxAgeMs) {
            try {
                return await ready.value;
            } catch {
                // made afresh below
            }
        }
        return this.make();
    }

    private start(): { since: number; value: Promise<T> } {
        const value = this.make();
        // A failed making matters only to a taker, who then makes another.
        value.catch(() => undefined);
        return { since: this.now(), value };
    }
}
