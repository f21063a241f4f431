// Index pages: immutable, sorted runs of (encoded value, document key) pairs, found through the fences
// (first and last pair) the manifest keeps for each page, and cached in memory since they never change.

/** An index entry: the encoded value (values.ts) and the document's key. */
export type Pair = [value: string, key: string];

/** Pairs in index order: by encoded value, then by key (UTF-16 code units, one fixed total order). */
export function comparePairs(a: Pair, b: Pair): number {
    if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
    return a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1;
}

/** A page as the manifest names it. */
export interface PageRef {
    obj: string;
    first: Pair;
    last: Pair;
    count: number;
}

/** The encoded values a query wants: from `low` to `high`, either end open or closed. */
export interface ValueRange {
    low: string;
    lowOpen: boolean;
    high: string;
    highOpen: boolean;
}

export function inRange(range: ValueRange, value: string): boolean {
    const aboveLow = range.lowOpen ? value > range.low : value >= range.low;
    const belowHigh = range.highOpen ? value < range.high : value <= range.high;
    return aboveLow && belowHigh;
}

/** The pages that may hold values of the range, in order: a binary search on the fences, then a walk. */
export function pagesFor(pages: PageRef[], range: ValueRange): PageRef[] {
    let lo = 0;
    let hi = pages.length;
    while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const last = pages[mid].last[0];
        if (range.lowOpen ? last > range.low : last >= range.low) hi = mid;
        else lo = mid + 1;
    }
    const found: PageRef[] = [];
    for (let i = lo; i < pages.length; i++) {
        const first = pages[i].first[0];
        if (range.highOpen ? first >= range.high : first > range.high) break;
        found.push(pages[i]);
    }
    return found;
}

const pairBytes = (p: Pair) => p[0].length + p[1].length + 6;

/** Sorted pairs cut into pages of about `maxBytes` of JSON each. */
export function cutPages(sorted: Pair[], maxBytes: number): Pair[][] {
    const pages: Pair[][] = [];
    let current: Pair[] = [];
    let bytes = 0;
    for (const pair of sorted) {
        if (current.length > 0 && bytes + pairBytes(pair) > maxBytes) {
            pages.push(current);
            current = [];
            bytes = 0;
        }
        current.push(pair);
        bytes += pairBytes(pair);
    }
    if (current.length > 0) pages.push(current);
    return pages;
}

/** A least-recently-used cache bounded by the bytes of what it holds. */
export class LruCache<V> {
    private readonly entries = new Map<string, { value: V; bytes: number }>();
    private bytes = 0;

    constructor(private readonly maxBytes: number) {}

    get(key: string): V | undefined {
        const entry = this.entries.get(key);
        if (!entry) return undefined;
        this.entries.delete(key);
        this.entries.set(key, entry);
        return entry.value;
    }

    set(key: string, value: V, bytes: number): void {
        this.delete(key);
        this.entries.set(key, { value, bytes });
        this.bytes += bytes;
        for (const [oldest, entry] of this.entries) {
            if (this.bytes <= this.maxBytes || oldest === key) break;
            this.entries.delete(oldest);
            this.bytes -= entry.bytes;
        }
    }

    delete(key: string): void {
        const entry = this.entries.get(key);
        if (!entry) return;
        this.entries.delete(key);
        this.bytes -= entry.bytes;
    }
}
