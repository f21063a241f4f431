// The folded part of a collection's indexes: immutable sorted pages (kv/<c>/page/<id>) and the manifest
// (kv/<c>/manifest) naming them per index with their fences. The manifest changes only by CAS (If-Match),
// and its epoch counts the changes; pages are written once (If-None-Match: *) and never changed.
import { randomBytes } from "node:crypto";
import { type JsonObjects, KvError } from "./objects";
import { prefixOf } from "./collections";
import { comparePairs, cutPages, inRange, LruCache, type PageRef, type Pair, pagesFor, type ValueRange } from "./pages";

export interface Manifest {
    epoch: number;
    indexes: Record<string, { pages: PageRef[] }>;
    /** Pages an earlier manifest named, kept for readers of that manifest until the page grace has passed. */
    retired?: { obj: string; at: number }[];
}

/** Every page a manifest keeps: those its indexes name and those it retired. */
export function pagesKept(manifest: Manifest): Set<string> {
    return new Set([
        ...Object.values(manifest.indexes).flatMap((i) => i.pages.map((p) => p.obj)),
        ...(manifest.retired ?? []).map((r) => r.obj),
    ]);
}

/** A page the manifest named was removed by a newer compaction meanwhile: read the manifest again. */
export class PageGone extends Error {}

const EMPTY: Manifest = { epoch: 0, indexes: {} };

export class IndexPages {
    private readonly manifests = new Map<string, { manifest: Manifest; etag: string }>();
    private readonly cache: LruCache<Pair[]>;

    constructor(
        private readonly objects: JsonObjects,
        private readonly pageBytes: number,
        cacheBytes: number,
    ) {
        this.cache = new LruCache(cacheBytes);
    }

    /** The manifest and its ETag (undefined before the first compaction); re-read only when it changed. */
    async manifest(c: string): Promise<{ manifest: Manifest; etag?: string }> {
        const cached = this.manifests.get(c);
        const got = await this.objects.get<Manifest>(`${prefixOf(c)}manifest`, cached?.etag);
        if (got === "unchanged") return cached!;
        if (!got) {
            this.manifests.delete(c);
            return { manifest: EMPTY };
        }
        const fresh = { manifest: got.value, etag: got.etag };
        this.manifests.set(c, fresh);
        return fresh;
    }

    async page(c: string, ref: PageRef): Promise<Pair[]> {
        const cached = this.cache.get(ref.obj);
        if (cached) return cached;
        const got = await this.objects.read<Pair[]>(`${prefixOf(c)}page/${ref.obj}`);
        if (!got) throw new PageGone(ref.obj);
        this.cache.set(ref.obj, got.value, got.bytes * 2);
        return got.value;
    }

    /** Writes sorted pairs as new pages; returns their references. */
    async write(c: string, sorted: Pair[]): Promise<PageRef[]> {
        const refs: PageRef[] = [];
        for (const body of cutPages(sorted, this.pageBytes)) {
            const obj = randomBytes(12).toString("base64url");
            await this.objects.put(`${prefixOf(c)}page/${obj}`, body, { ifNoneMatch: "*" });
            this.cache.set(obj, body, JSON.stringify(body).length * 2);
            refs.push({ obj, first: body[0], last: body[body.length - 1], count: body.length });
        }
        return refs;
    }

    /** Swaps the manifest if nobody else did since `etag`; false when another compaction won. */
    async swap(c: string, next: Manifest, etag: string | undefined): Promise<boolean> {
        try {
            const written = await this.objects.put(
                `${prefixOf(c)}manifest`,
                next,
                etag ? { ifMatch: etag } : { ifNoneMatch: "*" },
            );
            this.manifests.set(c, { manifest: next, etag: written });
            return true;
        } catch (err) {
            if (err instanceof KvError && err.status === 412) return false;
            throw err;
        }
    }

    async remove(c: string, objs: string[]): Promise<void> {
        objs.forEach((o) => this.cache.delete(o));
        await this.objects.deleteMany(objs.map((o) => `${prefixOf(c)}page/${o}`));
    }

    /**
     * One index's pages after a fold: every entry of a `touched` key is dropped and `additions` (sorted) are
     * merged in. Pages that neither lose nor gain an entry are kept as they are; the others are rewritten.
     */
    async apply(
        c: string,
        old: PageRef[],
        touched: Set<string>,
        additions: Pair[],
    ): Promise<{ pages: PageRef[]; written: string[]; dropped: string[] }> {
        if (old.length === 0) {
            const pages = await this.write(c, additions);
            return { pages, written: pages.map((p) => p.obj), dropped: [] };
        }
        const pages: PageRef[] = [];
        const written: string[] = [];
        const dropped: string[] = [];
        let next = 0;
        for (let i = 0; i < old.length; i++) {
            const upper = old[i + 1]?.first;
            const mine: Pair[] = [];
            while (next < additions.length && (!upper || comparePairs(additions[next], upper) < 0)) {
                mine.push(additions[next++]);
            }
            const body = await this.page(c, old[i]);
            const kept = body.filter((p) => !touched.has(p[1]));
            if (mine.length === 0 && kept.length === body.length) {
                pages.push(old[i]);
                continue;
            }
            dropped.push(old[i].obj);
            const rewritten = await this.write(c, mergeSorted(kept, mine));
            pages.push(...rewritten);
            written.push(...rewritten.map((p) => p.obj));
        }
        return { pages, written, dropped };
    }

    /**
     * The folded entries of one index in the range, in order (descending if `desc`), strictly after `after`;
     * pages are fetched one at a time, as the caller pulls.
     */
    async *entries(c: string, refs: PageRef[], range: ValueRange, desc: boolean, after?: Pair): AsyncGenerator<Pair> {
        const wanted = pagesFor(refs, range);
        if (desc) wanted.reverse();
        const beyond = (p: Pair) => !after || (desc ? comparePairs(p, after) < 0 : comparePairs(p, after) > 0);
        for (const ref of wanted) {
            if (after && !desc && comparePairs(ref.last, after) <= 0) continue;
            if (after && desc && comparePairs(ref.first, after) >= 0) continue;
            const body = await this.page(c, ref);
            const ordered = desc ? [...body].reverse() : body;
            for (const pair of ordered) {
                if (beyond(pair) && inRange(range, pair[0])) yield pair;
            }
        }
    }
}

/** Two sorted lists as one sorted list; a pair in both appears once. */
export function mergeSorted(a: Pair[], b: Pair[]): Pair[] {
    const out: Pair[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
        const cmp = i >= a.length ? 1 : j >= b.length ? -1 : comparePairs(a[i], b[j]);
        if (cmp <= 0) out.push(a[i++]);
        else out.push(b[j++]);
        if (cmp === 0) j++;
    }
    return out;
}
