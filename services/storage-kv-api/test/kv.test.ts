// storage-kv-api over the real chain: MinIO and OpenBao, storage-s3-api in front of them, and this service
// speaking S3 to storage-s3-api only.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import fc from "fast-check";
import * as yaml from "js-yaml";
import { s3Client } from "../../../tests/helpers/s3";
import { type Chain, filesUnder, type RunningService, startChain } from "../../storage-s3-api/test/chain";
import { JsonObjects } from "../src/objects";
import { createKvServer, servedRoutes } from "../src/server";
import { Store, type StoreOptions } from "../src/store";
import { encodeValue, type Scalar } from "../src/values";

/** The JSON answers of the API, one shape for all of them: each test reads the fields its route gives. */
interface Body {
    items: { key: string; version: string; data: unknown }[];
    cursor?: string;
    error: { code: string; message: string };
    folded: number;
}

interface Answer {
    status: number;
    body: Body;
    etag: string | null;
}

class Client {
    constructor(
        readonly url: string,
        private readonly token: string,
    ) {}
    async call(method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
        const res = await fetch(`${this.url}${route}`, {
            method,
            headers: { Authorization: `Bearer ${this.token}`, ...headers },
            body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, body: (text ? JSON.parse(text) : {}) as Body, etag: res.headers.get("etag") };
    }
    put = (c: string, key: string, doc: unknown, headers?: Record<string, string>) =>
        this.call("PUT", `/v1/collections/${c}/docs/${encodeURIComponent(key)}`, doc, headers);
    get = (c: string, key: string) => this.call("GET", `/v1/collections/${c}/docs/${encodeURIComponent(key)}`);
    del = (c: string, key: string, headers?: Record<string, string>) =>
        this.call("DELETE", `/v1/collections/${c}/docs/${encodeURIComponent(key)}`, undefined, headers);
    query = (c: string, q: object) => this.call("POST", `/v1/collections/${c}/query`, q);
}

describe("storage-kv-api over the real chain", function () {
    this.timeout(300_000);
    let chain: Chain;
    let s3api: RunningService;
    const secret = randomBytes(32);
    const token = randomBytes(24).toString("base64url");
    const started: Server[] = [];

    async function startKv(options: Partial<StoreOptions> = {}) {
        const s3 = s3Client(s3api.url, s3api.accessKey.id, s3api.accessKey.secret);
        const store = new Store(new JsonObjects(s3, "kv-store"), { secret, foldAfterMs: 0, ...options });
        const server = createKvServer({ store, tokens: { [token]: "family-app" }, maxDocumentBytes: 64 * 1024 });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        started.push(server);
        return { store, client: new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, token) };
    }

    let kv: Client;
    before(async () => {
        chain = await startChain();
        s3api = await chain.startService();
        await s3api.s3.send(new CreateBucketCommand({ Bucket: "kv-store" }));
        ({ client: kv } = await startKv());
        const people = await kv.call("PUT", "/v1/collections/people", {
            indexes: [{ field: "email", unique: true }, { field: "age" }, { field: "address.city" }],
        });
        assert.equal(people.status, 201);
    });
    after(async () => {
        for (const s of started) {
            s.closeAllConnections();
            s.close();
        }
        await chain?.stop();
    });

    it("creates, reads, updates with versions, lists by prefix with a cursor, deletes", async () => {
        const created = await kv.put("people", "ana", { name: "Ana", email: "ana@example.org", age: 41 });
        assert.equal(created.status, 201);
        assert.ok(created.etag);
        const read = await kv.get("people", "ana");
        assert.deepEqual(read.body, { name: "Ana", email: "ana@example.org", age: 41 });
        assert.equal(read.etag, created.etag);
        const updated = await kv.put("people", "ana", { name: "Ana", email: "ana@example.org", age: 42 });
        assert.equal(updated.status, 200);
        assert.notEqual(updated.etag, created.etag);
        assert.equal((await kv.put("people", "ana", {}, { "If-Match": created.etag })).status, 412, "stale version");

        for (let i = 0; i < 7; i++) await kv.put("people", `family/garcia/${i}`, { name: `G${i}` });
        const keys: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
            const page = await kv.call(
                "GET",
                `/v1/collections/people/docs?prefix=family/garcia/&limit=3${cursor ? `&cursor=${cursor}` : ""}`,
            );
            keys.push(...page.body.items.map((i) => i.key));
            cursor = page.body.cursor;
            pages++;
        } while (cursor);
        assert.equal(pages, 3);
        assert.deepEqual(
            keys,
            [0, 1, 2, 3, 4, 5, 6].map((i) => `family/garcia/${i}`),
        );

        assert.equal((await kv.del("people", "family/garcia/0")).status, 204);
        assert.equal((await kv.get("people", "family/garcia/0")).status, 404);
        assert.equal((await kv.del("people", "family/garcia/0")).status, 404);
    });

    it("lets exactly one of 8 concurrent writers win, for creates and for updates of one version", async () => {
        const creates = await Promise.all(
            Array.from({ length: 8 }, (_, i) => kv.put("people", "race", { writer: i }, { "If-None-Match": "*" })),
        );
        assert.deepEqual(creates.map((r) => r.status).sort(), [201, 412, 412, 412, 412, 412, 412, 412]);
        const version = (await kv.get("people", "race")).etag!;
        const updates = await Promise.all(
            Array.from({ length: 8 }, (_, i) => kv.put("people", "race", { writer: i }, { "If-Match": version })),
        );
        assert.deepEqual(updates.map((r) => r.status).sort(), [200, 412, 412, 412, 412, 412, 412, 412]);
        const winner = updates.findIndex((r) => r.status === 200);
        assert.deepEqual((await kv.get("people", "race")).body, { writer: winner });
    });

    it("keeps unique values unique, and frees a value its holder gave up", async () => {
        assert.equal((await kv.put("people", "ben", { email: "ben@example.org" })).status, 201);
        const taken = await kv.put("people", "ben2", { email: "ben@example.org" });
        assert.equal(taken.status, 409);
        assert.match(taken.body.error.message, /email/);
        assert.equal((await kv.put("people", "ben", { email: "ben@family.example" })).status, 200);
        assert.equal((await kv.put("people", "ben2", { email: "ben@example.org" })).status, 201);
        assert.equal((await kv.del("people", "ben2")).status, 204);
        assert.equal((await kv.put("people", "ben3", { email: "ben@example.org" })).status, 201);
    });

    it("answers queries exactly as a brute-force scan of the same documents (property)", async () => {
        await kv.call("PUT", "/v1/collections/things", { indexes: [{ field: "v" }, { field: "n.x" }] });
        const scalar = fc.oneof(
            fc.integer({ min: -50, max: 50 }),
            fc.double({ min: -1e6, max: 1e6, noNaN: true }),
            fc.string({ maxLength: 6, unit: "grapheme" }),
            fc.constantFrom("a", "ab", "é", "z", "", "日本"),
            fc.boolean(),
            fc.constant(null),
        );
        const docs = fc.sample(
            fc.record({
                v: fc.option(scalar, { nil: undefined }),
                n: fc.record({ x: fc.integer({ min: 0, max: 9 }) }),
            }),
            { numRuns: 60, seed: 42 },
        );
        await Promise.all(docs.map((d, i) => kv.put("things", `t${String(i).padStart(3, "0")}`, d)));
        // Half folded into the index, half still only in the log: queries must merge both.
        await kv.call("POST", "/v1/collections/things/repair");
        await Promise.all(docs.slice(0, 30).map((d, i) => kv.put("things", `t${String(i).padStart(3, "0")}`, d)));

        const compare = (a: [string, string], b: [string, string]) =>
            a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : Buffer.compare(Buffer.from(a[1]), Buffer.from(b[1]));
        const oracle = (q: Record<string, Scalar | string>) => {
            const bound = (k: string) => (q[k] === undefined ? undefined : encodeValue(q[k]));
            const kind = (encoded: string) =>
                encoded.startsWith("01") || encoded.startsWith("02") ? "bool" : encoded.slice(0, 2);
            const first = ["eq", "gt", "gte", "lt", "lte"].find((k) => q[k] !== undefined)!;
            const tag = kind(encodeValue(q[first]));
            return docs
                .map((d, i): [string, string] | undefined =>
                    d.v === undefined ? undefined : [encodeValue(d.v), `t${String(i).padStart(3, "0")}`],
                )
                .filter((p): p is [string, string] => p !== undefined)
                .filter(([v]) => {
                    if (q.eq !== undefined) return v === bound("eq");
                    if (kind(v) !== tag) return false;
                    const [gt, gte, lt, lte] = ["gt", "gte", "lt", "lte"].map(bound);
                    return (
                        (gt === undefined || v > gt) &&
                        (gte === undefined || v >= gte) &&
                        (lt === undefined || v < lt) &&
                        (lte === undefined || v <= lte)
                    );
                })
                .sort(compare)
                .map(([, key]) => key);
        };
        const queries = fc.oneof(
            scalar.map((v) => ({ eq: v })),
            fc.tuple(fc.integer({ min: -60, max: 60 }), fc.integer({ min: -60, max: 60 })).map(([a, b]) => ({
                gte: Math.min(a, b),
                lt: Math.max(a, b),
            })),
            fc.string({ maxLength: 2 }).map((s) => ({ gt: s })),
            fc.integer({ min: -60, max: 60 }).map((n) => ({ lte: n })),
            fc.constantFrom({ eq: true }, { eq: null }, { gte: false, lte: true }),
        );
        await fc.assert(
            fc.asyncProperty(
                queries,
                fc.constantFrom("asc", "desc"),
                fc.integer({ min: 1, max: 7 }),
                async (q, order, limit) => {
                    const got: string[] = [];
                    let cursor: string | undefined;
                    for (let pages = 0; pages < 100; pages++) {
                        const page = await kv.query("things", { field: "v", ...q, order, limit, cursor });
                        assert.equal(page.status, 200, JSON.stringify(page.body));
                        assert.ok(page.body.items.length <= limit);
                        got.push(...page.body.items.map((i) => i.key));
                        cursor = page.body.cursor;
                        if (!cursor) break;
                    }
                    const expected = oracle(q as Record<string, Scalar>);
                    assert.deepEqual(got, order === "desc" ? expected.reverse() : expected, JSON.stringify(q));
                },
            ),
            { numRuns: 40, seed: 7 },
        );
        const nested = await kv.query("things", { field: "n.x", eq: 3 });
        assert.deepEqual(
            nested.body.items.map((i) => i.key),
            docs.flatMap((d, i) => (d.n.x === 3 ? [`t${String(i).padStart(3, "0")}`] : [])),
        );
    });

    it("loses nothing when the process dies between a document's commit and its index, and repair folds it", async () => {
        const crashing = await startKv({
            hooks: {
                afterCommit: () => {
                    throw new Error("process died");
                },
            },
        });
        await assert.rejects(crashing.store.put("people", "carla", { email: "carla@example.org", age: 33 }));
        // The document is there, and queries find it before any repair.
        assert.equal((await kv.get("people", "carla")).status, 200);
        const before = await kv.query("people", { field: "age", eq: 33 });
        assert.deepEqual(
            before.body.items.map((i) => i.key),
            ["carla"],
        );

        // A write that died after its log record but before its commit leaves nothing a query returns.
        const dying = await startKv({
            hooks: {
                afterLog: () => {
                    throw new Error("process died");
                },
            },
        });
        await assert.rejects(dying.store.put("people", "ghost", { email: "ghost@example.org", age: 33 }));
        assert.equal((await kv.get("people", "ghost")).status, 404);

        const repaired = await kv.call("POST", "/v1/collections/people/repair");
        assert.equal(repaired.status, 200);
        assert.ok(repaired.body.folded >= 2);
        const after = await kv.query("people", { field: "age", eq: 33 });
        assert.deepEqual(
            after.body.items.map((i) => i.key),
            ["carla"],
        );
    });

    it("builds an index added to a collection that already holds documents", async () => {
        await kv.call("PUT", "/v1/collections/notes", { indexes: [] });
        for (let i = 0; i < 12; i++) await kv.put("notes", `n${i}`, { tag: i % 3 === 0 ? "todo" : "done", i });
        const added = await kv.call("PUT", "/v1/collections/notes", { indexes: [{ field: "tag" }] });
        assert.equal(added.status, 200);
        const todo = await kv.query("notes", { field: "tag", eq: "todo" });
        assert.deepEqual(
            todo.body.items.map((i) => i.key),
            ["n0", "n3", "n6", "n9"],
        );
    });

    it("never returns a deleted document to a query running while documents are deleted", async () => {
        await kv.call("PUT", "/v1/collections/photos", { indexes: [{ field: "year" }] });
        await Promise.all(Array.from({ length: 40 }, (_, i) => kv.put("photos", `p${i}`, { year: 2026 })));
        await kv.call("POST", "/v1/collections/photos/repair");
        const deleted = new Set<string>();
        const deleting = (async () => {
            for (let i = 0; i < 40; i += 2) {
                await kv.del("photos", `p${i}`);
                deleted.add(`p${i}`);
            }
        })();
        for (let round = 0; round < 6; round++) {
            const deletedBefore = new Set(deleted);
            const got = await kv.query("photos", { field: "year", eq: 2026, limit: 1000 });
            const keys: string[] = got.body.items.map((i) => i.key);
            assert.deepEqual(
                keys.filter((k) => deletedBefore.has(k)),
                [],
                "a deleted document was returned",
            );
            for (let i = 1; i < 40; i += 2) assert.ok(keys.includes(`p${i}`), `p${i} is missing`);
        }
        await deleting;
        const final = await kv.query("photos", { field: "year", eq: 2026, limit: 1000 });
        assert.equal(final.body.items.length, 20);
    });

    it("answers bad input with a 4xx that says what is wrong", async () => {
        const cases: [Promise<Answer>, number, RegExp][] = [
            [kv.put("people", "x", "{not json"), 400, /not valid JSON/],
            [kv.put("people", "big", { blob: "x".repeat(70 * 1024) }), 413, /at most 65536 bytes/],
            [kv.put("people", "bad\u0001key", {}), 400, /document key/],
            [kv.put("people", "k".repeat(513), {}), 400, /1-512 bytes/],
            [kv.put("nobody", "x", {}), 404, /no collection nobody/],
            [kv.call("PUT", "/v1/collections/bad", { indexes: [{ field: "a..b" }] }), 400, /field path/],
            [kv.call("PUT", "/v1/collections/Bad Name", {}), 400, /collection name/],
            [kv.query("people", { field: "shoe", eq: 1 }), 400, /shoe is not an indexed field/],
            [kv.query("people", { field: "age" }), 400, /needs eq/],
            [kv.query("people", { field: "age", gt: 1, lt: "z" }), 400, /one type/],
            [kv.query("people", { field: "age", eq: 1, cursor: "forged.cursor" }), 400, /cursor/],
            [kv.call("GET", "/v1/collections/people/docs?limit=0"), 400, /limit/],
            [kv.call("PATCH", "/v1/collections/people/docs/x"), 405, /PATCH/],
        ];
        for (const [answer, status, message] of cases) {
            const got = await answer;
            assert.equal(got.status, status, JSON.stringify(got.body));
            assert.match(got.body.error.message, message);
        }
        const anonymous = await fetch(`${kv.url}/v1/collections/people`);
        assert.equal(anonymous.status, 401);
        const wrong = await new Client(kv.url, "wrong-token").get("people", "ana");
        assert.equal(wrong.status, 401);
    });

    it("leaves no document content nor indexed value readable in MinIO's files", async () => {
        const marker = `unique-secret-${randomBytes(6).toString("hex")}`;
        await kv.put("people", "dora", { email: `${marker}@example.org`, diary: `${marker} diary` });
        await kv.call("POST", "/v1/collections/people/repair");
        const stored = filesUnder(chain.minio.dir);
        assert.ok(
            stored.some((f) => f.path.startsWith("kv-store/kv/people/")),
            "MinIO's files were not read",
        );
        assert.ok(!stored.some((f) => f.bytes.includes(marker) || f.path.includes(marker)), "plaintext in MinIO");
        assert.ok(!stored.some((f) => f.path.includes(Buffer.from(marker).toString("hex"))), "index value in a name");
    });

    it("describes every route it serves in openapi.yaml, and nothing else", () => {
        const spec = yaml.load(fs.readFileSync(path.join(__dirname, "..", "openapi.yaml"), "utf8")) as {
            paths: Record<string, Record<string, unknown>>;
        };
        const described = Object.entries(spec.paths)
            .flatMap(([p, ops]) =>
                Object.keys(ops)
                    .filter((m) => ["get", "put", "post", "delete", "patch"].includes(m))
                    .map((m) => `${m.toUpperCase()} ${p}`),
            )
            .sort();
        const served = [...servedRoutes().map((r) => `${r.method} ${r.path}`), "GET /healthz"].sort();
        assert.deepEqual(described, served);
    });
});
