// Documents, unique claims, verified queries and repair, over one storage-s3-api bucket. The layout and the
// protocol are in README.md; in short:
//
//   kv/<c>/schema             indexes of the collection (collections.ts)
//   kv/<c>/d/<key>            {key, data}, or the tombstone {"deleted":true}; its S3 ETag is the version
//   kv/<c>/log/<ms>-<rand>    {key, values}: a write's index values, written before its commit
//   kv/<c>/manifest, page/<id>  the folded indexes (indexes.ts)
//   kv/<c>/u/<index>/<mac>    a unique value's claim {key, at}, named by an HMAC of the value
//
// A write logs before it commits, so a committed value is always in the log or in the pages; a query merges
// both and checks every candidate against the document, so it never returns a deleted or stale document.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { type Collections, type IndexSpec, type IndexState, prefixOf, type Schema } from "./collections";
import { IndexPages, type Manifest, PageGone, pagesKept } from "./indexes";
import { KvMetrics } from "./metrics";
import { type JsonObjects, KvError } from "./objects";
import { checkCollection, checkKey } from "./names";
import { comparePairs, inRange, type Pair } from "./pages";
import { parseQuery, rangeOf } from "./query";
import { indexedValue } from "./values";

interface LogRecord {
    key: string;
    /** The document's encoded index values after the change, by index name; null for a delete. */
    values: Record<string, string> | null;
}

interface Claim {
    key: string;
    at: number;
}

interface Doc {
    key: string;
    data: unknown;
}

const TOMBSTONE = { deleted: true } as const;
/** Listed sizes up to this are tombstones: a live document's {key, data} is always longer. */
export const TOMBSTONE_BYTES = JSON.stringify(TOMBSTONE).length;

export interface Timing {
    /** A write gives up (503) rather than commit later than this after it started. */
    writeDeadlineMs: number;
    /** How long a process trusts its cached schema. */
    schemaTtlMs: number;
    /** Allowance for clocks of replicas that disagree. */
    clockSkewMs: number;
    /**
     * How long a page stays after a compaction stopped naming it, for queries still reading the manifest
     * before; also how old an unnamed page must be before a later compaction collects it (see collect).
     */
    pageGraceMs: number;
}

export const DEFAULT_TIMING: Timing = {
    writeDeadlineMs: 10_000,
    schemaTtlMs: 5_000,
    clockSkewMs: 5_000,
    pageGraceMs: 10 * 60_000,
};

/**
 * How many times a write that lost its commit to another writer of the same document starts again. A commit
 * is lost only to another commit of that document, so with at most N writes of one document in flight a write
 * loses at most N - 1 times: 10 attempts carry 10 concurrent writers of one document through. More contention
 * than that on one document is answered 503 SlowDown with Retry-After rather than with unbounded work.
 */
export const WRITE_ATTEMPTS = 10;

/** The commit's CAS failed: another writer committed this document since it was read. */
class LostRace extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Points of a write where tests make the process "die" by throwing. */
export interface StepHooks {
    afterLog?: () => void | Promise<void>;
    afterCommit?: () => void | Promise<void>;
    beforeManifestSwap?: () => void | Promise<void>;
    /** Between the new manifest and the collection of pages it no longer names. */
    afterManifestSwap?: () => void | Promise<void>;
}

/** About how many bytes of JSON an index page holds (PAGE_BYTES). */
export const DEFAULT_PAGE_BYTES = 64 * 1024;

export interface StoreOptions {
    /** Keys the claims' names and seals cursors: the backend never sees a unique value. */
    secret: Buffer;
    timing?: Partial<Timing>;
    /** Log records after which a repair starts on its own. */
    repairAfterRecords?: number;
    pageBytes?: number;
    pageCacheBytes?: number;
    hooks?: StepHooks;
    metrics?: KvMetrics;
}

export interface RepairReport {
    folded: number;
    documentsRead: number;
    built: string[];
    failed: string[];
    epoch: number;
    /** Another compaction swapped the manifest first; nothing of this one was kept. */
    raced: boolean;
    /** Pages deleted: named by no manifest for longer than the page grace. */
    collected: number;
}

export interface Condition {
    ifMatch?: string;
    ifNoneMatch?: "*";
}

type Current = { live: true; data: unknown; etag: string } | { live: false; etag?: string };

/** For the S3 client: a lost conditional write (412) is ordinary here, not worth a console warning. */
export const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Runs `work` on every item, at most `width` at a time; results in the items' order. */
async function mapBounded<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
    const out = new Array<R>(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const i = next++;
            out[i] = await work(items[i]);
        }
    };
    await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
    return out;
}

const logTime = (name: string) => Number(name.slice(name.lastIndexOf("/") + 1).split("-")[0]);

export class Store {
    readonly timing: Timing;
    /** After this, every writer knows a new index, no logged write can still commit, and a claim is stale. */
    readonly settleMs: number;
    readonly metrics: KvMetrics;
    private readonly pages: IndexPages;
    private readonly logCache = new Map<string, Map<string, LogRecord>>();
    private readonly writes = new Map<string, number>();
    private readonly repairs = new Map<string, Promise<RepairReport>>();

    constructor(
        private readonly objects: JsonObjects,
        readonly collections: Collections,
        private readonly options: StoreOptions,
    ) {
        this.timing = { ...DEFAULT_TIMING, ...options.timing };
        this.settleMs = this.timing.writeDeadlineMs + this.timing.schemaTtlMs + this.timing.clockSkewMs;
        this.metrics = options.metrics ?? new KvMetrics();
        this.pages = new IndexPages(
            objects,
            options.pageBytes ?? DEFAULT_PAGE_BYTES,
            options.pageCacheBytes ?? 64 * 2 ** 20,
        );
    }

    private docName = (c: string, key: string) => `${prefixOf(c)}d/${key}`;
    private claimName = (c: string, index: string, value: string) =>
        `${prefixOf(c)}u/${index}/${this.mac(`claim\0${c}\0${index}\0${value}`)}`;
    private mac = (text: string) => createHmac("sha256", this.options.secret).update(text).digest("base64url");

    /**
     * One backend read when the document is there: collections are never removed, so a stored document proves
     * its collection; only a miss reads the schema, to tell an unknown collection from an unknown document.
     */
    async get(c: string, key: string): Promise<{ data: unknown; version: string } | undefined> {
        checkCollection(c);
        checkKey(key);
        const doc = await this.current(c, key);
        if (doc.live) return { data: doc.data, version: doc.etag };
        await this.collections.schema(c);
        return undefined;
    }

    /**
     * Writes a document; `ifMatch` a version (or *), `ifNoneMatch: "*"` to create only. A write that loses its
     * commit to another writer starts again from reading the document, so the last writer wins and only a
     * client's condition that no longer holds is a 412.
     */
    async put(c: string, key: string, data: unknown, cond: Condition = {}) {
        return this.withRetries("put", () => this.putOnce(c, key, data, cond));
    }

    private async putOnce(c: string, key: string, data: unknown, cond: Condition) {
        const started = Date.now();
        const schema = await this.collections.schema(c);
        checkKey(key);
        const current = await this.current(c, key);
        checkPrecondition(current, cond);
        const values = indexValues(schema, data);
        const before = current.live ? indexValues(schema, current.data) : {};
        const claims = schema.indexes.flatMap((index) => {
            const value = values[index.name];
            const claimed = index.unique && index.state !== "failed" && value !== undefined;
            return claimed && value !== before[index.name] ? [this.claim(c, index, value, key)] : [];
        });
        // Claims and the log record only have to precede the commit; a record left by a write whose claim
        // failed is an orphan, which queries and repair ignore.
        await Promise.all([...claims, this.log(c, { key, values })]);
        await this.options.hooks?.afterLog?.();
        this.checkDeadline(started);
        const version = await this.commit(c, key, { key, data } satisfies Doc, current.etag);
        await this.options.hooks?.afterCommit?.();
        this.afterWrite(c);
        return { version, created: !current.live };
    }

    /**
     * Deletes by writing a tombstone on the version read: the commit point like a put, and retried like one. An
     * unconditional delete that finds, on a retry, the document deleted by another writer is done.
     */
    async delete(c: string, key: string, cond: { ifMatch?: string } = {}): Promise<void> {
        let attempt = 0;
        await this.withRetries("delete", () => this.deleteOnce(c, key, cond, attempt++ > 0));
    }

    private async deleteOnce(c: string, key: string, cond: { ifMatch?: string }, retry: boolean): Promise<void> {
        const started = Date.now();
        await this.collections.schema(c);
        checkKey(key);
        const current = await this.current(c, key);
        if (!current.live && cond.ifMatch === undefined) {
            if (retry) return;
            throw new KvError(404, "NoSuchDocument", `there is no document ${key} in ${c}`);
        }
        checkPrecondition(current, cond);
        await this.log(c, { key, values: null });
        await this.options.hooks?.afterLog?.();
        this.checkDeadline(started);
        await this.commit(c, key, TOMBSTONE, current.etag);
        await this.options.hooks?.afterCommit?.();
        this.afterWrite(c);
    }

    /** Writes the document on the version read (none: create); a lost CAS is a LostRace. */
    private async commit(c: string, key: string, value: Doc | typeof TOMBSTONE, read: string | undefined) {
        try {
            return await this.objects.put(this.docName(c, key), value, read ? { ifMatch: read } : { ifNoneMatch: "*" });
        } catch (err) {
            if (err instanceof KvError && err.status === 412) throw new LostRace();
            throw err;
        }
    }

    /** Runs a write until it does not lose a race, at most WRITE_ATTEMPTS times, a little apart. */
    private async withRetries<T>(operation: "put" | "delete", attempt: () => Promise<T>): Promise<T> {
        for (let n = 1; ; n++) {
            try {
                return await attempt();
            } catch (err) {
                if (!(err instanceof LostRace)) throw err;
            }
            if (n >= WRITE_ATTEMPTS) {
                this.metrics.writeRetriesExhausted.add([operation]);
                throw new KvError(
                    503,
                    "SlowDown",
                    `the document changed under each of ${WRITE_ATTEMPTS} attempts of this write; try again`,
                    1,
                );
            }
            this.metrics.writeRetries.add([operation]);
            // Apart at random, so that the writers who lost to the same commit do not meet again at once.
            await sleep(Math.random() * Math.min(50, 5 * 2 ** n));
        }
    }

    /** Keys and versions under a prefix, in key order; tombstones (by their listed size) are left out. */
    async list(c: string, prefix: string, limit: number, cursor?: string) {
        await this.collections.schema(c);
        const base = `${prefixOf(c)}d/`;
        const items: { key: string; version: string }[] = [];
        let startAfter = cursor === undefined ? undefined : base + this.openCursor<string>(cursor);
        let more = true;
        while (items.length < limit && more) {
            const page = await this.objects.list(base + prefix, { startAfter, limit: limit - items.length });
            for (const o of page.objects) {
                if (o.size > TOMBSTONE_BYTES) items.push({ key: o.key.slice(base.length), version: o.etag });
            }
            more = page.truncated && page.objects.length > 0;
            startAfter = page.objects.at(-1)?.key;
        }
        const last = startAfter?.slice(base.length);
        return { items, cursor: more && last !== undefined ? this.sealCursor(last) : undefined };
    }

    /** Documents whose indexed value is in the query's range, ordered, each checked against its document. */
    async query(c: string, input: unknown) {
        const q = parseQuery(input);
        const schema = await this.collections.schema(c);
        const index = schema.indexes.find((i) => i.name === q.index);
        if (!index) throw new KvError(400, "NoSuchIndex", `${c} has no index ${q.index}`);
        if (index.state !== "ready") {
            throw new KvError(
                409,
                index.state === "building" ? "IndexBuilding" : "IndexFailed",
                index.state === "building"
                    ? `index ${q.index} is still being built from existing documents; try again after a repair`
                    : `index ${q.index} could not be built: ${index.reason ?? "unknown"}`,
            );
        }
        const range = rangeOf(q);
        const after = q.cursor === undefined ? undefined : this.openCursor<Pair>(q.cursor);
        for (let attempt = 0; ; attempt++) {
            try {
                return await this.runQuery(c, index, range, q.order === "desc", q.limit!, after);
            } catch (err) {
                if (!(err instanceof PageGone) || attempt >= 3) throw err; // a compaction swapped pages: again
            }
        }
    }

    private async runQuery(
        c: string,
        index: IndexSpec,
        range: ReturnType<typeof rangeOf>,
        desc: boolean,
        limit: number,
        after: Pair | undefined,
    ) {
        // The log is listed before the manifest is read: a record folded in between is in that manifest.
        const logs = await this.readLog(c);
        const { manifest } = await this.pages.manifest(c);
        const beyond = (p: Pair) => !after || (desc ? comparePairs(p, after) < 0 : comparePairs(p, after) > 0);
        const logged = new Map<string, Pair>();
        for (const r of logs) {
            const value = r.values?.[index.name];
            if (value !== undefined && inRange(range, value) && beyond([value, r.key])) {
                logged.set(`${value}\0${r.key}`, [value, r.key]);
            }
        }
        const fromLog = [...logged.values()].sort(comparePairs);
        if (desc) fromLog.reverse();
        const folded = this.pages.entries(c, manifest.indexes[index.name]?.pages ?? [], range, desc, after);
        const candidates = mergeStreams(folded, fromLog, desc);

        const items: { key: string; version: string; data: unknown }[] = [];
        let exhausted = false;
        while (items.length < limit && !exhausted) {
            const batch: Pair[] = [];
            const want = Math.min(32, limit - items.length + 4);
            while (batch.length < want) {
                const next = await candidates.next();
                if (next.done) {
                    exhausted = true;
                    break;
                }
                batch.push(next.value);
            }
            const docs = await Promise.all(batch.map((p) => this.current(c, p[1])));
            for (const [i, doc] of docs.entries()) {
                if (doc.live && indexedValue(doc.data, index.path) === batch[i][0]) {
                    items.push({ key: batch[i][1], version: doc.etag, data: doc.data });
                    if (items.length === limit) {
                        const more = i < batch.length - 1 || !(await candidates.next()).done;
                        return { items, cursor: more ? this.sealCursor(batch[i]) : undefined };
                    }
                }
            }
        }
        return { items, cursor: undefined };
    }

    /** Repairs a collection; concurrent calls in this process share the run in progress. */
    async repair(c: string): Promise<RepairReport> {
        const running = this.repairs.get(c);
        if (running) await running.catch(() => undefined);
        const run = this.repairOnce(c).finally(() => this.repairs.delete(c));
        this.repairs.set(c, run);
        return run;
    }

    /** Every collection's repair, as on start-up. */
    async repairAll(): Promise<Record<string, RepairReport>> {
        const reports: Record<string, RepairReport> = {};
        for (const c of await this.collections.names()) reports[c] = await this.repair(c);
        return reports;
    }

    /**
     * Folds log records older than the settle time into the pages, resolving each logged key against its
     * document as it is now; builds indexes declared at least the settle time ago from every document; swaps
     * the manifest by CAS, in which the pages it replaced are retired; then deletes the folded records and
     * collects the pages no manifest keeps.
     */
    private async repairOnce(c: string): Promise<RepairReport> {
        const schema = await this.collections.schema(c, true);
        const { manifest, etag } = await this.pages.manifest(c);
        const now = Date.now();
        const foldable = (await this.objects.listAll(`${prefixOf(c)}log/`)).filter(
            (o) => logTime(o.key) < now - this.settleMs,
        );
        const records = await mapBounded(foldable, 16, (o) => this.record(c, o.key));
        const touched = new Set(records.flatMap((r) => (r ? [r.key] : [])));
        const building = schema.indexes.filter((i) => i.state === "building" && now >= i.addedAt + this.settleMs);
        const ready = schema.indexes.filter((i) => i.state === "ready");

        let everyKey: string[] = [];
        if (building.length > 0) {
            const base = `${prefixOf(c)}d/`;
            everyKey = (await this.objects.listAll(base))
                .filter((o) => o.size > TOMBSTONE_BYTES)
                .map((o) => o.key.slice(base.length));
        }
        const toRead = [...new Set([...touched, ...everyKey])];
        const docs = new Map<string, Current>();
        await mapBounded(toRead, 16, async (k) => docs.set(k, await this.current(c, k)));

        const next: Manifest = { epoch: manifest.epoch + 1, indexes: {}, retired: [] };
        const written: string[] = [];
        const dropped: string[] = [];
        const outcome = new Map<string, { addedAt: number; state: IndexState; reason?: string }>();
        try {
            for (const index of ready) {
                const old = manifest.indexes[index.name]?.pages ?? [];
                const additions = pairsOf(index, [...touched], docs);
                const applied = await this.pages.apply(c, old, touched, additions);
                next.indexes[index.name] = { pages: applied.pages };
                written.push(...applied.written);
                dropped.push(...applied.dropped);
            }
            for (const index of building) {
                const pairs = pairsOf(index, everyKey, docs);
                const problem = index.unique ? await this.claimAll(c, index, pairs) : undefined;
                if (problem === "retry") continue; // a write in flight holds a value: build at the next repair
                const pages = problem ? [] : await this.pages.write(c, pairs);
                dropped.push(...(manifest.indexes[index.name]?.pages ?? []).map((p) => p.obj)); // an earlier build's
                next.indexes[index.name] = { pages };
                written.push(...pages.map((p) => p.obj));
                outcome.set(index.name, {
                    addedAt: index.addedAt,
                    state: problem ? "failed" : "ready",
                    reason: problem,
                });
            }
            for (const [name, old] of Object.entries(manifest.indexes)) {
                if (!next.indexes[name]) next.indexes[name] = old; // building, or kept until built again
            }
            // Retired pages past the grace are left out, so the collection below deletes them.
            const stillRetired = (manifest.retired ?? []).filter((r) => r.at > now - this.timing.pageGraceMs);
            next.retired = [...stillRetired, ...dropped.map((obj) => ({ obj, at: now }))];
            await this.options.hooks?.beforeManifestSwap?.();
            // A compaction swaps within half the grace of its start, so that the collection by another
            // process never takes a page this one wrote and is about to name (see collect).
            if (Date.now() - now > this.timing.pageGraceMs / 2) {
                throw new KvError(503, "RepairTooSlow", "the repair took over half the page grace; try again");
            }
        } catch (err) {
            await this.pages.remove(c, written).catch(() => undefined);
            throw err;
        }
        if (!(await this.pages.swap(c, next, etag))) {
            await this.pages.remove(c, written).catch(() => undefined);
            return {
                folded: 0,
                documentsRead: toRead.length,
                built: [],
                failed: [],
                epoch: manifest.epoch,
                raced: true,
                collected: 0,
            };
        }
        await this.options.hooks?.afterManifestSwap?.();
        await this.objects.deleteMany(foldable.map((o) => o.key));
        foldable.forEach((o) => this.logCache.get(c)?.delete(o.key));
        const collected = await this.collect(c);
        if (outcome.size > 0) await this.collections.settle(c, outcome);
        const failed = [...outcome].filter(([, o]) => o.state === "failed").map(([n]) => n);
        return {
            folded: foldable.length,
            documentsRead: toRead.length,
            built: [...outcome.keys()].filter((n) => !failed.includes(n)),
            failed,
            epoch: next.epoch,
            raced: false,
            collected,
        };
    }

    /**
     * Deletes the pages the current manifest does not keep and that were written more than the page grace
     * ago: those a manifest retired past the grace, and those of a compaction that died before its swap or
     * between its swap and this collection. A page younger than the grace may be one another compaction wrote
     * and is about to name: that compaction swaps within half the grace of its start, or gives up. The pages
     * are listed before the manifest is read, so a page named by a swap after the listing is in that manifest;
     * a collection that took over a quarter of the grace since that read deletes nothing and leaves it to the
     * next one.
     */
    private async collect(c: string): Promise<number> {
        const base = `${prefixOf(c)}page/`;
        const listed = await this.objects.listAll(base);
        const readAt = Date.now();
        const kept = pagesKept((await this.pages.manifest(c)).manifest);
        const garbage = listed
            .filter((o) => !kept.has(o.key.slice(base.length)))
            .filter((o) => o.modified < readAt - this.timing.pageGraceMs)
            .map((o) => o.key.slice(base.length));
        if (garbage.length === 0 || Date.now() - readAt > this.timing.pageGraceMs / 4) return 0;
        await this.pages.remove(c, garbage);
        this.metrics.pagesCollected.add([], garbage.length);
        return garbage.length;
    }

    /** The manifest as queries see it (for tests and operators). */
    async manifest(c: string): Promise<Manifest> {
        await this.collections.schema(c);
        return (await this.pages.manifest(c)).manifest;
    }

    /**
     * Claims every value of a unique index being built for the document holding it. A value two documents
     * share fails the index (the answer says so); a claim a write in flight holds makes the build wait for the
     * next repair ("retry").
     */
    private async claimAll(c: string, index: IndexSpec, sorted: Pair[]): Promise<string | undefined> {
        for (let i = 1; i < sorted.length; i++) {
            if (sorted[i][0] === sorted[i - 1][0]) return `documents share a value of ${index.path}`;
        }
        try {
            await mapBounded(sorted, 16, ([value, key]) => this.claim(c, index, value, key));
            return undefined;
        } catch (err) {
            if (err instanceof KvError && err.status === 409) return "retry";
            throw err;
        }
    }

    /**
     * Takes a unique value for `key`. A claim is taken over only when its holder's document no longer has the
     * value and the claim is older than the settle time (its writer can no longer commit); refreshing our own
     * claim changes its ETag, so a takeover racing with it fails.
     */
    private async claim(c: string, index: IndexSpec, value: string, key: string): Promise<void> {
        const name = this.claimName(c, index.name, value);
        const conflict = () =>
            new KvError(409, "UniqueConflict", `another document of ${c} has this value of unique index ${index.name}`);
        for (let attempt = 0; attempt < 4; attempt++) {
            try {
                await this.objects.put(name, { key, at: Date.now() } satisfies Claim, { ifNoneMatch: "*" });
                return;
            } catch (err) {
                if (!(err instanceof KvError && err.status === 412)) throw err;
            }
            const held = await this.objects.read<Claim>(name);
            if (!held) continue;
            if (held.value.key !== key) {
                const holder = await this.current(c, held.value.key);
                const stillHeld = holder.live && indexedValue(holder.data, index.path) === value;
                if (stillHeld || Date.now() - held.value.at < this.settleMs) throw conflict();
            }
            try {
                await this.objects.put(name, { key, at: Date.now() } satisfies Claim, { ifMatch: held.etag });
                return;
            } catch (err) {
                if (!(err instanceof KvError && err.status === 412)) throw err;
            }
        }
        throw conflict();
    }

    private async current(c: string, key: string): Promise<Current> {
        const doc = await this.objects.read<Doc | typeof TOMBSTONE>(this.docName(c, key));
        if (!doc) return { live: false };
        if ("deleted" in doc.value) return { live: false, etag: doc.etag };
        return { live: true, data: doc.value.data, etag: doc.etag };
    }

    private checkDeadline(started: number): void {
        if (Date.now() - started > this.timing.writeDeadlineMs) {
            throw new KvError(503, "WriteTimedOut", "the write took too long and was not committed; try again");
        }
    }

    private async log(c: string, record: LogRecord): Promise<void> {
        const name = `${prefixOf(c)}log/${String(Date.now()).padStart(15, "0")}-${randomBytes(6).toString("hex")}`;
        await this.objects.put(name, record, { ifNoneMatch: "*" });
        this.logs(c).set(name, record);
    }

    private logs(c: string): Map<string, LogRecord> {
        let cached = this.logCache.get(c);
        if (!cached) {
            cached = new Map<string, LogRecord>();
            this.logCache.set(c, cached);
        }
        return cached;
    }

    /** A log record (immutable, so cached); undefined if a compaction deleted it meanwhile. */
    private async record(c: string, name: string): Promise<LogRecord | undefined> {
        const cached = this.logs(c).get(name);
        if (cached) return cached;
        const got = await this.objects.read<LogRecord>(name);
        if (got) this.logs(c).set(name, got.value);
        return got?.value;
    }

    private async readLog(c: string): Promise<LogRecord[]> {
        const listed = await this.objects.listAll(`${prefixOf(c)}log/`);
        const names = new Set(listed.map((o) => o.key));
        const cache = this.logs(c);
        for (const name of cache.keys()) if (!names.has(name)) cache.delete(name);
        if (listed.length > (this.options.repairAfterRecords ?? 256)) this.repairInBackground(c);
        const records = await mapBounded(listed, 16, (o) => this.record(c, o.key));
        return records.filter((r): r is LogRecord => r !== undefined);
    }

    private afterWrite(c: string): void {
        const count = (this.writes.get(c) ?? 0) + 1;
        this.writes.set(c, count);
        if (count >= (this.options.repairAfterRecords ?? 256)) {
            this.writes.set(c, 0);
            this.repairInBackground(c);
        }
    }

    /** A repair nobody waits for; a failed one is harmless, the next one catches up. */
    repairInBackground(c: string, delayMs = 0): void {
        if (this.repairs.has(c) && delayMs === 0) return;
        const run = () => void this.repair(c).catch(() => undefined);
        if (delayMs > 0) setTimeout(run, delayMs).unref();
        else run();
    }

    private sealCursor(value: unknown): string {
        const body = Buffer.from(JSON.stringify(value)).toString("base64url");
        return `${body}.${this.mac(`cursor\0${body}`).slice(0, 22)}`;
    }

    private openCursor<T>(cursor: string): T {
        const [body = "", mac = ""] = cursor.split(".");
        const expected = Buffer.from(this.mac(`cursor\0${body}`).slice(0, 22));
        if (!body || mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), expected)) {
            throw new KvError(400, "InvalidCursor", "the cursor is not one this service gave");
        }
        return JSON.parse(Buffer.from(body, "base64url").toString()) as T;
    }
}

function checkPrecondition(current: Current, cond: Condition): void {
    if (cond.ifNoneMatch === "*" && current.live) {
        throw new KvError(412, "PreconditionFailed", "the document exists (If-None-Match: *)");
    }
    if (cond.ifMatch === "*" && !current.live) {
        throw new KvError(412, "PreconditionFailed", "the document does not exist (If-Match: *)");
    }
    if (cond.ifMatch !== undefined && cond.ifMatch !== "*" && !(current.live && cond.ifMatch === current.etag)) {
        throw new KvError(412, "PreconditionFailed", "the document is not at the version in If-Match");
    }
}

/** The encoded values a document has for each index of the schema. */
function indexValues(schema: Schema, data: unknown): Record<string, string> {
    const values: Record<string, string> = {};
    for (const index of schema.indexes) {
        const value = indexedValue(data, index.path);
        if (value !== undefined) values[index.name] = value;
    }
    return values;
}

/** The sorted index entries of the given keys' current documents. */
function pairsOf(index: IndexSpec, keys: string[], docs: Map<string, Current>): Pair[] {
    const pairs: Pair[] = [];
    for (const key of keys) {
        const doc = docs.get(key);
        const value = doc?.live ? indexedValue(doc.data, index.path) : undefined;
        if (value !== undefined) pairs.push([value, key]);
    }
    return pairs.sort(comparePairs);
}

/** A lazy sorted stream and a sorted list as one stream in the same order; a pair in both comes once. */
async function* mergeStreams(stream: AsyncGenerator<Pair>, list: Pair[], desc: boolean): AsyncGenerator<Pair> {
    const cmp = (a: Pair, b: Pair) => (desc ? -comparePairs(a, b) : comparePairs(a, b));
    let a = await stream.next();
    let j = 0;
    while (!a.done || j < list.length) {
        const order = a.done ? 1 : j >= list.length ? -1 : cmp(a.value, list[j]);
        if (order <= 0) {
            yield a.value as Pair;
            a = await stream.next();
            if (order === 0) j++;
        } else {
            yield list[j++];
        }
    }
}
