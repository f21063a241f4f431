// A collection's schema: its indexes, each building (being filled from existing documents), ready, or failed
// (a unique index over documents that already share a value). Kept at kv/<c>/schema, changed by CAS.
import { type JsonObjects, KvError } from "./objects";
import { checkCollection, checkIndexName, checkPath } from "./names";

export type IndexState = "building" | "ready" | "failed";

export interface IndexSpec {
    name: string;
    path: string;
    unique: boolean;
    state: IndexState;
    /** When it was declared (ms): it may be built once every writer has seen it. */
    addedAt: number;
    /** Why a failed index failed. */
    reason?: string;
}

export interface Schema {
    indexes: IndexSpec[];
}

/** What a client declares: a name (the path by default), the path, unique or not. */
export interface IndexDeclaration {
    name?: unknown;
    path?: unknown;
    unique?: unknown;
}

export const prefixOf = (c: string) => `kv/${c}/`;

export class Collections {
    private readonly cache = new Map<string, { schema: Schema; at: number }>();

    constructor(
        private readonly objects: JsonObjects,
        /** How long a cached schema is trusted; part of the wait before a new index is built. */
        private readonly ttlMs: number,
    ) {}

    /** The schema, at most `ttlMs` old unless `fresh`; 404 for an unknown collection. */
    async schema(c: string, fresh = false): Promise<Schema> {
        checkCollection(c);
        const cached = this.cache.get(c);
        if (!fresh && cached && Date.now() - cached.at < this.ttlMs) return cached.schema;
        const stored = await this.objects.read<Schema>(`${prefixOf(c)}schema`);
        if (!stored) throw new KvError(404, "NoSuchCollection", `there is no collection ${c}`);
        this.cache.set(c, { schema: stored.value, at: Date.now() });
        return stored.value;
    }

    /** Creates the collection or adds indexes. A new collection's indexes are ready at once (it is empty). */
    async define(c: string, declared: IndexDeclaration[]): Promise<{ created: boolean; schema: Schema }> {
        checkCollection(c);
        const wanted = declared.map((d) => {
            checkPath(d.path);
            const name = d.name ?? d.path;
            checkIndexName(name);
            if (d.unique !== undefined && typeof d.unique !== "boolean") {
                throw new KvError(400, "InvalidIndex", `index ${name}: unique is true or false`);
            }
            return { name, path: d.path, unique: d.unique === true };
        });
        for (let attempt = 0; attempt < 5; attempt++) {
            const current = await this.objects.read<Schema>(`${prefixOf(c)}schema`);
            const now = Date.now();
            const indexes = current ? current.value.indexes.map((i) => ({ ...i })) : [];
            for (const w of wanted) {
                const known = indexes.find((i) => i.name === w.name);
                if (!known) {
                    indexes.push({ ...w, state: current ? "building" : "ready", addedAt: now });
                } else if (known.path !== w.path || known.unique !== w.unique) {
                    throw new KvError(
                        409,
                        "IndexConflict",
                        `index ${w.name} exists already with path ${known.path} and unique=${known.unique}`,
                    );
                } else if (known.state === "failed") {
                    Object.assign(known, { state: "building", addedAt: now, reason: undefined });
                }
            }
            const schema = { indexes };
            try {
                await this.objects.put(
                    `${prefixOf(c)}schema`,
                    schema,
                    current ? { ifMatch: current.etag } : { ifNoneMatch: "*" },
                );
            } catch (err) {
                if (err instanceof KvError && err.status === 412) continue; // someone else changed it: again
                throw err;
            }
            this.cache.set(c, { schema, at: Date.now() });
            return { created: !current, schema };
        }
        throw new KvError(503, "Contention", `the schema of ${c} kept changing; try again`);
    }

    /** Sets the state of indexes a repair built (only if they are still the ones it built). */
    async settle(c: string, outcome: Map<string, { addedAt: number; state: IndexState; reason?: string }>) {
        for (let attempt = 0; attempt < 5; attempt++) {
            const current = await this.objects.read<Schema>(`${prefixOf(c)}schema`);
            if (!current) return;
            const indexes = current.value.indexes.map((i) => {
                const o = outcome.get(i.name);
                return o && o.addedAt === i.addedAt && i.state === "building"
                    ? { ...i, state: o.state, reason: o.reason }
                    : i;
            });
            try {
                await this.objects.put(`${prefixOf(c)}schema`, { indexes }, { ifMatch: current.etag });
                this.cache.set(c, { schema: { indexes }, at: Date.now() });
                return;
            } catch (err) {
                if (!(err instanceof KvError && err.status === 412)) throw err;
            }
        }
    }

    /** Every collection in the bucket. */
    async names(): Promise<string[]> {
        const { prefixes } = await this.objects.list("kv/", { delimiter: "/" });
        return prefixes.map((p) => p.slice(3, -1));
    }
}
