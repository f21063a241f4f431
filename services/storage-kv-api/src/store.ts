// Collections of JSON documents with secondary indexes, kept as objects in one storage-s3-api bucket.
//
//   kv/<c>/schema            the collection: its indexes
//   kv/<c>/d/<key>           a document; its S3 ETag is its version
//   kv/<c>/log/<time>-<rand> a change record, written before the document it describes (If-None-Match: *)
//   kv/<c>/index             the folded index: per field, sorted [encoded value, key] pairs (If-Match)
//   kv/<c>/u/<field>/<mac>   a unique value's claim: which document holds it
//
// Index values live only inside encrypted objects, never in object names. A write logs its new index values
// before it commits the document, so no committed document can miss its index entry; a query merges the
// folded index with the log and checks every candidate against the document itself, so it never returns a
// deleted or stale document. Repair folds the log into the index (and builds new indexes from the documents).
import { createHmac, randomBytes } from "node:crypto";
import { type JsonObjects, KvError } from "./objects";
import { encodeValue, indexedValue, isScalar, type Scalar, typeRange } from "./values";

export interface IndexSpec {
    field: string;
    unique: boolean;
}

interface Schema {
    indexes: IndexSpec[];
}

interface Document {
    data: unknown;
}

interface LogRecord {
    key: string;
    /** The document's indexed values after the change; null for a delete. */
    values: Record<string, string> | null;
}

interface FoldedIndex {
    /** The fields whose entries are complete (built from every document). */
    built: string[];
    entries: Record<string, [string, string][]>;
}

interface Claim {
    key: string;
    at: number;
}

export interface Query {
    field: string;
    eq?: Scalar;
    gt?: Scalar;
    gte?: Scalar;
    lt?: Scalar;
    lte?: Scalar;
    order?: "asc" | "desc";
    limit?: number;
    cursor?: string;
}

export interface StoreOptions {
    /** Keys the claims' names and seals cursors: the backend never sees a unique value. */
    secret: Buffer;
    /** Log records younger than this stay unfolded, so a write between its log and commit is never lost. */
    foldAfterMs?: number;
    /** Writes after which a repair folds the log on its own. */
    repairEvery?: number;
    /** Test hooks: throwing from one is a process dying at that point. */
    hooks?: { afterLog?: () => void | Promise<void>; afterCommit?: () => void | Promise<void> };
}

const FIELD = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,7}$/;
const COLLECTION = /^[a-z0-9][a-z0-9_-]{0,62}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const CLAIM_GRACE_MS = 10_000;

export function checkCollection(name: string): void {
    if (!COLLECTION.test(name)) {
        throw new KvError(400, "InvalidCollection", "a collection name is 1-63 of a-z, 0-9, '_' and '-'");
    }
}

export function checkKey(key: string): void {
    const bytes = Buffer.byteLength(key);
    if (bytes < 1 || bytes > 512 || CONTROL.test(key)) {
        throw new KvError(400, "InvalidKey", "a document key is 1-512 bytes of UTF-8 without control characters");
    }
}

export function checkField(field: unknown): asserts field is string {
    if (typeof field !== "string" || !FIELD.test(field)) {
        throw new KvError(400, "InvalidField", "a field path is up to 8 dot-separated names like address.city");
    }
}

const byPair = (a: [string, string], b: [string, string]) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : Buffer.compare(Buffer.from(a[1]), Buffer.from(b[1]));

export class Store {
    private readonly schemas = new Map<string, { schema: Schema; at: number }>();
    private readonly logCache = new Map<string, LogRecord>();
    private folded = new Map<string, { index: FoldedIndex; etag: string }>();
    private writesSinceRepair = 0;

    constructor(
        private readonly objects: JsonObjects,
        private readonly options: StoreOptions,
    ) {}

    private docKey = (c: string, key: string) => `kv/${c}/d/${key}`;
    private claimKey = (c: string, field: string, value: string) =>
        `kv/${c}/u/${field}/${createHmac("sha256", this.options.secret).update(`${c}\0${field}\0${value}`).digest("base64url")}`;

    async defineCollection(c: string, indexes: IndexSpec[]): Promise<{ created: boolean; schema: Schema }> {
        checkCollection(c);
        indexes.forEach((i) => checkField(i.field));
        const current = await this.objects.read<Schema>(`kv/${c}/schema`);
        const merged = new Map((current?.value.indexes ?? []).map((i) => [i.field, i]));
        for (const index of indexes) {
            const known = merged.get(index.field);
            if (known && known.unique !== index.unique) {
                throw new KvError(
                    409,
                    "IndexConflict",
                    `${index.field} is indexed already with unique=${known.unique}`,
                );
            }
            merged.set(index.field, { field: index.field, unique: index.unique === true });
        }
        const schema = { indexes: [...merged.values()] };
        await this.objects.put(`kv/${c}/schema`, schema, current ? { ifMatch: current.etag } : { ifNoneMatch: "*" });
        this.schemas.set(c, { schema, at: Date.now() });
        if (schema.indexes.length > (current?.value.indexes.length ?? 0)) await this.repair(c);
        return { created: !current, schema };
    }

    async schema(c: string): Promise<Schema> {
        checkCollection(c);
        const cached = this.schemas.get(c);
        if (cached && Date.now() - cached.at < 5_000) return cached.schema;
        const stored = await this.objects.read<Schema>(`kv/${c}/schema`);
        if (!stored) throw new KvError(404, "NoSuchCollection", `there is no collection ${c}`);
        this.schemas.set(c, { schema: stored.value, at: Date.now() });
        return stored.value;
    }

    async get(c: string, key: string): Promise<{ data: unknown; version: string } | undefined> {
        await this.schema(c);
        checkKey(key);
        const doc = await this.objects.read<Document>(this.docKey(c, key));
        return doc && { data: doc.value.data, version: doc.etag };
    }

    /** Writes a document; `ifMatch` a version, or `ifNoneMatch: "*"` to create only. */
    async put(c: string, key: string, data: unknown, cond: { ifMatch?: string; ifNoneMatch?: "*" } = {}) {
        const schema = await this.schema(c);
        checkKey(key);
        const current = await this.objects.read<Document>(this.docKey(c, key));
        this.checkPrecondition(current?.etag, cond);
        const values: Record<string, string> = {};
        for (const { field } of schema.indexes) {
            const value = indexedValue(data, field);
            if (value !== undefined) values[field] = value;
        }
        const released: [string, string][] = [];
        for (const { field, unique } of schema.indexes.filter((i) => i.unique)) {
            const before = current ? indexedValue(current.value.data, field) : undefined;
            if (values[field] !== undefined && values[field] !== before) await this.claim(c, field, values[field], key);
            if (before !== undefined && before !== values[field] && unique) released.push([field, before]);
        }
        await this.log(c, { key, values });
        await this.options.hooks?.afterLog?.();
        const version = await this.objects.put(
            this.docKey(c, key),
            { data },
            current ? { ifMatch: current.etag } : { ifNoneMatch: "*" },
        );
        await this.options.hooks?.afterCommit?.();
        await this.release(c, key, released);
        this.afterWrite(c);
        return { version, created: !current };
    }

    async delete(c: string, key: string, cond: { ifMatch?: string } = {}): Promise<void> {
        const schema = await this.schema(c);
        checkKey(key);
        const current = await this.objects.read<Document>(this.docKey(c, key));
        if (!current) throw new KvError(404, "NoSuchDocument", `there is no document ${key} in ${c}`);
        this.checkPrecondition(current.etag, cond);
        await this.log(c, { key, values: null });
        await this.objects.delete(this.docKey(c, key));
        const held = schema.indexes
            .filter((i) => i.unique)
            .map((i): [string, string | undefined] => [i.field, indexedValue(current.value.data, i.field)])
            .filter((p): p is [string, string] => p[1] !== undefined);
        await this.release(c, key, held);
        this.afterWrite(c);
    }

    async list(c: string, prefix: string, limit: number, cursor?: string) {
        await this.schema(c);
        const base = `kv/${c}/d/`;
        const page = await this.objects.list(base + prefix, {
            startAfter: cursor === undefined ? undefined : base + this.openCursor<string>(cursor),
            limit,
        });
        const items = page.objects.map((o) => ({ key: o.key.slice(base.length), version: o.etag }));
        return { items, cursor: page.truncated && items.length ? this.sealCursor(items.at(-1)!.key) : undefined };
    }

    async query(c: string, q: Query) {
        const schema = await this.schema(c);
        checkField(q.field);
        if (!schema.indexes.some((i) => i.field === q.field)) {
            throw new KvError(400, "NotIndexed", `${q.field} is not an indexed field of ${c}`);
        }
        const limit = q.limit ?? 100;
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
            throw new KvError(400, "InvalidQuery", "limit is a whole number from 1 to 1000");
        }
        const { low, lowOpen, high, highOpen } = bounds(q);
        const inRange = (v: string) => (lowOpen ? v > low : v >= low) && (highOpen ? v < high : v <= high);

        const logs = await this.readLog(c); // before the folded index: nothing falls between the two
        let folded = await this.foldedIndex(c);
        if (!folded.built.includes(q.field)) {
            await this.repair(c);
            folded = await this.foldedIndex(c);
        }
        const seen = new Set<string>();
        const candidates: [string, string][] = [];
        const add = (pair: [string, string]) => {
            const id = `${pair[0]}\0${pair[1]}`;
            if (inRange(pair[0]) && !seen.has(id)) {
                seen.add(id);
                candidates.push(pair);
            }
        };
        (folded.entries[q.field] ?? []).forEach(add);
        for (const record of logs) {
            const value = record.values?.[q.field];
            if (value !== undefined) add([value, record.key]);
        }
        candidates.sort(byPair);
        if (q.order === "desc") candidates.reverse();
        let start = 0;
        if (q.cursor !== undefined) {
            const after = this.openCursor<[string, string]>(q.cursor);
            start = candidates.findIndex((p) => (q.order === "desc" ? byPair(p, after) < 0 : byPair(p, after) > 0));
            if (start < 0) start = candidates.length;
        }
        // Every candidate is checked against its document: an entry whose document is gone or holds another
        // value now is skipped, whatever the index says.
        const items: { key: string; version: string; data: unknown }[] = [];
        let last: [string, string] | undefined;
        let i = start;
        while (i < candidates.length && items.length < limit) {
            const batch = candidates.slice(i, i + Math.min(32, limit - items.length + 8));
            const docs = await Promise.all(batch.map((p) => this.objects.read<Document>(this.docKey(c, p[1]))));
            for (const [j, doc] of docs.entries()) {
                i++;
                last = batch[j];
                if (doc && indexedValue(doc.value.data, q.field) === batch[j][0]) {
                    items.push({ key: batch[j][1], version: doc.etag, data: doc.value.data });
                    if (items.length === limit) break;
                }
            }
        }
        return { items, cursor: i < candidates.length && last ? this.sealCursor(last) : undefined };
    }

    /**
     * Folds the log into the index, reading each logged document as it is now; builds indexes that are not
     * built yet from every document. Safe to run at any time and from several replicas (the index is written
     * only if nobody else wrote it meanwhile).
     */
    async repair(c: string): Promise<{ folded: number; documentsRead: number; rebuilt: string[] }> {
        const schema = await this.schema(c);
        const stored = await this.objects.read<FoldedIndex>(`kv/${c}/index`);
        const index: FoldedIndex = stored?.value ?? { built: [], entries: {} };
        const fields = schema.indexes.map((i) => i.field);
        const rebuilt = fields.filter((f) => !index.built.includes(f));
        const foldBefore = Date.now() - (this.options.foldAfterMs ?? 30_000);
        const logs = (await this.objects.listAll(`kv/${c}/log/`)).filter(
            (o) => Number(o.key.slice(`kv/${c}/log/`.length).split("-")[0]) < foldBefore,
        );
        let keys: string[];
        if (rebuilt.length) {
            const prefix = `kv/${c}/d/`;
            keys = (await this.objects.listAll(prefix)).map((o) => o.key.slice(prefix.length));
            index.entries = Object.fromEntries(fields.map((f) => [f, []]));
        } else {
            keys = [...new Set((await Promise.all(logs.map((o) => this.record(o.key)))).map((r) => r.key))];
        }
        const touched = new Set(keys);
        for (const f of fields) index.entries[f] = (index.entries[f] ?? []).filter(([, key]) => !touched.has(key));
        for (let i = 0; i < keys.length; i += 32) {
            const batch = keys.slice(i, i + 32);
            const docs = await Promise.all(batch.map((k) => this.objects.read<Document>(this.docKey(c, k))));
            docs.forEach((doc, j) => {
                for (const f of fields) {
                    const value = doc && indexedValue(doc.value.data, f);
                    if (value !== undefined && value !== null) index.entries[f].push([value, batch[j]]);
                }
            });
        }
        for (const f of fields) index.entries[f].sort(byPair);
        index.built = fields;
        try {
            await this.objects.put(`kv/${c}/index`, index, stored ? { ifMatch: stored.etag } : { ifNoneMatch: "*" });
        } catch (err) {
            if (err instanceof KvError && err.status === 412) return { folded: 0, documentsRead: 0, rebuilt: [] };
            throw err;
        }
        await this.objects.deleteMany(logs.map((o) => o.key));
        logs.forEach((o) => this.logCache.delete(o.key));
        return { folded: logs.length, documentsRead: keys.length, rebuilt };
    }

    /** Every collection's repair, as on start-up. */
    async repairAll(): Promise<string[]> {
        const { prefixes } = await this.objects.list("kv/", { delimiter: "/" });
        const collections = prefixes.map((p) => p.slice(3, -1));
        for (const c of collections) await this.repair(c);
        return collections;
    }

    private checkPrecondition(etag: string | undefined, cond: { ifMatch?: string; ifNoneMatch?: "*" }) {
        if (cond.ifNoneMatch === "*" && etag !== undefined) {
            throw new KvError(412, "PreconditionFailed", "the document exists (If-None-Match: *)");
        }
        if (cond.ifMatch !== undefined && cond.ifMatch !== "*" && cond.ifMatch !== etag) {
            throw new KvError(412, "PreconditionFailed", "the document is not at the version in If-Match");
        }
        if (cond.ifMatch === "*" && etag === undefined) {
            throw new KvError(412, "PreconditionFailed", "the document does not exist (If-Match: *)");
        }
    }

    /** Takes a unique value for `key`; a claim left by a write that never committed is taken over. */
    private async claim(c: string, field: string, value: string, key: string): Promise<void> {
        const name = this.claimKey(c, field, value);
        const conflict = () => new KvError(409, "UniqueConflict", `another document of ${c} has this ${field}`);
        try {
            await this.objects.put(name, { key, at: Date.now() } satisfies Claim, { ifNoneMatch: "*" });
            return;
        } catch (err) {
            if (!(err instanceof KvError && err.status === 412)) throw err;
        }
        const holder = await this.objects.read<Claim>(name);
        if (!holder || holder.value.key === key) return this.claim(c, field, value, key);
        const held = await this.objects.read<Document>(this.docKey(c, holder.value.key));
        const stillHeld = held && indexedValue(held.value.data, field) === value;
        if (stillHeld || Date.now() - holder.value.at < CLAIM_GRACE_MS) throw conflict();
        await this.objects.put(name, { key, at: Date.now() } satisfies Claim, { ifMatch: holder.etag }).catch(() => {
            throw conflict();
        });
    }

    /** Gives back unique values `key` no longer holds. */
    private async release(c: string, key: string, held: [string, string][]): Promise<void> {
        for (const [field, value] of held) {
            const name = this.claimKey(c, field, value);
            const claim = await this.objects.read<Claim>(name);
            if (claim?.value.key === key) await this.objects.delete(name);
        }
    }

    private async log(c: string, record: LogRecord): Promise<void> {
        const name = `kv/${c}/log/${String(Date.now()).padStart(15, "0")}-${randomBytes(6).toString("hex")}`;
        await this.objects.put(name, record, { ifNoneMatch: "*" });
        this.logCache.set(name, record);
    }

    private async record(name: string): Promise<LogRecord> {
        let record = this.logCache.get(name);
        if (!record) {
            record = (await this.objects.read<LogRecord>(name))?.value ?? { key: "", values: null };
            this.logCache.set(name, record);
        }
        return record;
    }

    private async readLog(c: string): Promise<LogRecord[]> {
        const names = await this.objects.listAll(`kv/${c}/log/`);
        return Promise.all(names.map((o) => this.record(o.key)));
    }

    /** The folded index, re-read only when it changed (a conditional GET). */
    private async foldedIndex(c: string): Promise<FoldedIndex> {
        const cached = this.folded.get(c);
        const got = await this.objects.get<FoldedIndex>(`kv/${c}/index`, cached?.etag);
        if (got === "unchanged") return cached!.index;
        if (!got) return { built: [], entries: {} };
        this.folded.set(c, { index: got.value, etag: got.etag });
        return got.value;
    }

    private afterWrite(c: string): void {
        if (++this.writesSinceRepair < (this.options.repairEvery ?? 256)) return;
        this.writesSinceRepair = 0;
        void this.repair(c).catch(() => undefined); // the next repair catches up
    }

    private sealCursor(value: unknown): string {
        const body = Buffer.from(JSON.stringify(value)).toString("base64url");
        const mac = createHmac("sha256", this.options.secret).update(body).digest("base64url").slice(0, 22);
        return `${body}.${mac}`;
    }

    private openCursor<T>(cursor: string): T {
        const [body, mac] = cursor.split(".");
        const expected = createHmac("sha256", this.options.secret)
            .update(body ?? "")
            .digest("base64url")
            .slice(0, 22);
        if (!body || mac !== expected)
            throw new KvError(400, "InvalidCursor", "the cursor is not one this service gave");
        return JSON.parse(Buffer.from(body, "base64url").toString()) as T;
    }
}

/** The encoded bounds of a query: `eq`, or a range whose open ends stop at the bound's type. */
function bounds(q: Query): { low: string; lowOpen: boolean; high: string; highOpen: boolean } {
    const given = (["eq", "gt", "gte", "lt", "lte"] as const).filter((k) => q[k] !== undefined);
    for (const k of given) {
        const v = q[k];
        if (!isScalar(v) || (typeof v === "number" && !Number.isFinite(v))) {
            throw new KvError(400, "InvalidQuery", `${k} takes a string, number, boolean or null`);
        }
    }
    if (given.length === 0) throw new KvError(400, "InvalidQuery", "a query needs eq, or gt/gte and/or lt/lte");
    if (q.eq !== undefined) {
        if (given.length > 1) throw new KvError(400, "InvalidQuery", "eq does not combine with a range");
        const v = encodeValue(q.eq);
        return { low: v, lowOpen: false, high: v, highOpen: false };
    }
    if (q.gt !== undefined && q.gte !== undefined) throw new KvError(400, "InvalidQuery", "give gt or gte, not both");
    if (q.lt !== undefined && q.lte !== undefined) throw new KvError(400, "InvalidQuery", "give lt or lte, not both");
    // Not `??`: null is a value to compare with.
    const lower = q.gt !== undefined ? q.gt : q.gte;
    const upper = q.lt !== undefined ? q.lt : q.lte;
    const type = typeRange((lower !== undefined ? lower : upper) as Scalar);
    if (lower !== undefined && upper !== undefined && typeRange(upper).low !== type.low) {
        throw new KvError(400, "InvalidQuery", "a range's bounds are of one type");
    }
    return {
        low: lower === undefined ? type.low : encodeValue(lower),
        lowOpen: q.gt !== undefined,
        high: upper === undefined ? type.high : encodeValue(upper),
        highOpen: upper === undefined || q.lt !== undefined,
    };
}
