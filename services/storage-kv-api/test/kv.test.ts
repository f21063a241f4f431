// storage-kv-api over the real chain: an S3 backend (SeaweedFS, MinIO) and OpenBao, storage-s3-api in front of
// them, and this service speaking S3 to storage-s3-api only; on each backend.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import fc from "fast-check";
import * as yaml from "js-yaml";
import { describeEachS3Backend, freePort, reusesIdleConnection, s3Backends, s3Client } from "@peoples-cloud/testkit";
import { type Chain, filesUnder, type RunningService, startChain } from "@peoples-cloud/storage-s3-api/test/chain";
import { Collections } from "../src/collections";
import { pagesKept } from "../src/indexes";
import { JsonObjects } from "../src/objects";
import type { Pair } from "../src/pages";
import { createKvServer, servedRoutes } from "../src/server";
import { quietLogger, Store, type StoreOptions, WRITE_ATTEMPTS } from "../src/store";
import { encodeValue, type Scalar } from "../src/values";

/** The JSON answers of the API, one shape for all of them: each test reads the fields its route gives. */
interface Body {
    items: { key: string; version: string; data: unknown }[];
    cursor?: string;
    error: { code: string; message: string };
    folded: number;
    collected: number;
    indexes: { name: string; state: string; reason?: string }[];
}

interface Answer {
    status: number;
    body: Body;
    etag: string | null;
    retryAfter: string | null;
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
        return {
            status: res.status,
            body: (text ? JSON.parse(text) : {}) as Body,
            etag: res.headers.get("etag"),
            retryAfter: res.headers.get("retry-after"),
        };
    }
    put = (c: string, key: string, doc: unknown, headers?: Record<string, string>) =>
        this.call("PUT", `/v1/collections/${c}/docs/${encodeURIComponent(key)}`, doc, headers);
    get = (c: string, key: string) => this.call("GET", `/v1/collections/${c}/docs/${encodeURIComponent(key)}`);
    del = (c: string, key: string, headers?: Record<string, string>) =>
        this.call("DELETE", `/v1/collections/${c}/docs/${encodeURIComponent(key)}`, undefined, headers);
    query = (c: string, q: object) => this.call("POST", `/v1/collections/${c}/query`, q);
    repair = (c: string) => this.call("POST", `/v1/collections/${c}/repair`);
}

const TIMING = { writeDeadlineMs: 2_000, schemaTtlMs: 100, clockSkewMs: 0 };
const SETTLE_MS = TIMING.writeDeadlineMs + TIMING.schemaTtlMs + TIMING.clockSkewMs;
/** Runs `work` on 0..count-1, a few at a time (a 2-core machine runs the whole chain). */
async function several(count: number, work: (i: number) => Promise<unknown>, width = 8): Promise<void> {
    let next = 0;
    await Promise.all(
        Array.from({ length: width }, async () => {
            while (next < count) await work(next++);
        }),
    );
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A sample's value in a service's /metrics (0 when absent). */
async function metric(client: Client, sample: string): Promise<number> {
    const text = await (await fetch(`${client.url}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
    return line ? Number(line.slice(sample.length + 1)) : 0;
}
/** Waits until log records written so far may be folded and indexes declared so far may be built. */
const settle = () => sleep(SETTLE_MS + 50);

/** The index entries a brute-force read of documents gives: the oracle for pages and queries. */
function expectedPairs(docs: Map<string, unknown>, path: string): Pair[] {
    const pairs: Pair[] = [];
    for (const [key, data] of docs) {
        let v: unknown = data;
        for (const step of path.split("."))
            v = v && typeof v === "object" ? (v as Record<string, unknown>)[step] : undefined;
        const scalar = v === null || typeof v === "boolean" || typeof v === "string" || typeof v === "number";
        if (scalar) pairs.push([encodeValue(v as Scalar), key]);
    }
    return pairs.sort((a, b) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
}

describeEachS3Backend("storage-kv-api over the real chain", function (backend) {
    this.timeout(120_000);
    let chain: Chain;
    let s3api: RunningService;
    const secret = randomBytes(32);
    const token = randomBytes(24).toString("base64url");
    const started: http.Server[] = [];

    async function startKv(options: Partial<StoreOptions> = {}) {
        const s3 = s3Client(s3api.url, s3api.accessKey.id, s3api.accessKey.secret, { logger: quietLogger });
        const objects = new JsonObjects(s3, "kv-store");
        const store = new Store(objects, new Collections(objects, TIMING.schemaTtlMs), {
            secret,
            timing: TIMING,
            pageBytes: 400, // small pages, so that queries and compaction cross many of them
            ...options,
        });
        const server = createKvServer({ store, tokens: { [token]: "family-app" }, maxDocumentBytes: 64 * 1024 });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        started.push(server);
        return { store, client: new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, token) };
    }

    /** What is stored, read through storage-s3-api: every live document of a collection. */
    async function allDocs(c: string): Promise<Map<string, unknown>> {
        const docs = new Map<string, unknown>();
        let cursor: string | undefined;
        do {
            const page = await kv.call("GET", `/v1/collections/${c}/docs?limit=50${cursor ? `&cursor=${cursor}` : ""}`);
            for (const { key } of page.body.items) docs.set(key, (await kv.get(c, key)).body);
            cursor = page.body.cursor;
        } while (cursor);
        return docs;
    }

    /** The folded entries of an index, read from the manifest and its pages as they are stored. */
    async function foldedPairs(c: string, index: string): Promise<Pair[]> {
        const read = async <T>(key: string) => {
            const got = await s3api.s3.send(new GetObjectCommand({ Bucket: "kv-store", Key: key }));
            return JSON.parse(await got.Body!.transformToString()) as T;
        };
        const manifest = await read<{ indexes: Record<string, { pages: { obj: string }[] }> }>(`kv/${c}/manifest`);
        const pages = await Promise.all(
            (manifest.indexes[index]?.pages ?? []).map((p) => read<Pair[]>(`kv/${c}/page/${p.obj}`)),
        );
        return pages.flat();
    }

    /** The pages stored for a collection, by name, sorted. */
    async function storedPages(c: string): Promise<string[]> {
        const base = `kv/${c}/page/`;
        const names: string[] = [];
        let token: string | undefined;
        do {
            const page = await s3api.s3.send(
                new ListObjectsV2Command({ Bucket: "kv-store", Prefix: base, ContinuationToken: token }),
            );
            names.push(...(page.Contents ?? []).map((o) => o.Key!.slice(base.length)));
            token = page.NextContinuationToken;
        } while (token);
        return names.sort();
    }

    const logCount = async (c: string) =>
        (await s3api.s3.send(new ListObjectsV2Command({ Bucket: "kv-store", Prefix: `kv/${c}/log/` }))).KeyCount ?? 0;

    let kv: Client;
    before(async () => {
        chain = await startChain(backend);
        s3api = await chain.startService();
        await s3api.s3.send(new CreateBucketCommand({ Bucket: "kv-store" }));
        ({ client: kv } = await startKv());
        const people = await kv.call("PUT", "/v1/collections/people", {
            indexes: [{ path: "email", unique: true }, { path: "age" }, { name: "city", path: "address.city" }],
        });
        assert.equal(people.status, 201, JSON.stringify(people.body));
        assert.deepEqual(
            people.body.indexes.map((i) => [i.name, i.state]),
            [
                ["email", "ready"],
                ["age", "ready"],
                ["city", "ready"],
            ],
        );
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
        assert.equal(
            (await kv.put("people", "ana", {}, { "If-Match": created.etag ?? "" })).status,
            412,
            "stale version",
        );
        assert.equal((await kv.put("people", "ana", { age: 43 }, { "If-Match": updated.etag! })).status, 200);
        assert.equal((await kv.put("people", "ana", {}, { "If-None-Match": "*" })).status, 412, "exists");

        for (let i = 0; i < 8; i++) await kv.put("people", `family/garcia/${i}`, { name: `G${i}` });
        await kv.put("people", "family/garciaz", { name: "not under the prefix" });
        assert.equal((await kv.del("people", "family/garcia/3")).status, 204);
        const keys: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
            const page = await kv.call(
                "GET",
                `/v1/collections/people/docs?prefix=family/garcia/&limit=3${cursor ? `&cursor=${cursor}` : ""}`,
            );
            assert.equal(page.status, 200);
            assert.ok(page.body.items.length <= 3);
            keys.push(...page.body.items.map((i) => i.key));
            cursor = page.body.cursor;
            pages++;
        } while (cursor);
        assert.equal(pages, 3);
        assert.deepEqual(
            keys,
            [0, 1, 2, 4, 5, 6, 7].map((i) => `family/garcia/${i}`),
            "the deleted document is not listed",
        );

        assert.equal((await kv.get("people", "family/garcia/3")).status, 404);
        assert.equal((await kv.del("people", "family/garcia/3")).status, 404);
        const again = await kv.put("people", "family/garcia/3", { name: "back" }, { "If-None-Match": "*" });
        assert.equal(again.status, 201, "a deleted key can be created again");
        assert.deepEqual((await kv.get("people", "family/garcia/3")).body, { name: "back" });
    });

    it("lets exactly one of 8 concurrent writers win: creates, updates and deletes of one version", async () => {
        const creates = await Promise.all(
            Array.from({ length: 8 }, (_, i) => kv.put("people", "race", { writer: i }, { "If-None-Match": "*" })),
        );
        assert.deepEqual(creates.map((r) => r.status).sort(), [201, 412, 412, 412, 412, 412, 412, 412]);
        const version = (await kv.get("people", "race")).etag!;
        // Each update differs from the created document: ETags are of content, as on S3, so a write that changes
        // nothing would leave the version another writer's If-Match names.
        const updates = await Promise.all(
            Array.from({ length: 8 }, (_, i) =>
                kv.put("people", "race", { writer: i, updated: true }, { "If-Match": version }),
            ),
        );
        assert.deepEqual(updates.map((r) => r.status).sort(), [200, 412, 412, 412, 412, 412, 412, 412]);
        const winner = updates.findIndex((r) => r.status === 200);
        const now = await kv.get("people", "race");
        assert.deepEqual(now.body, { writer: winner, updated: true });
        const deletes = await Promise.all(
            Array.from({ length: 8 }, () => kv.del("people", "race", { "If-Match": now.etag! })),
        );
        assert.deepEqual(
            deletes.map((r) => r.status).sort(),
            [204, 412, 412, 412, 412, 412, 412, 412],
            JSON.stringify(deletes.map((r) => r.body)),
        );
        assert.equal((await kv.get("people", "race")).status, 404);
    });

    it("lets the last of 8 unconditional writers of one key win, none answered 412, the indexes agreeing", async () => {
        await kv.call("PUT", "/v1/collections/contended", {
            indexes: [{ path: "email", unique: true }, { path: "age" }, { name: "city", path: "address.city" }],
        });
        // Each writer's whole document differs from the others' in every field, indexed or not.
        const whole = (writer: number, round: number) => ({
            writer,
            round,
            email: `writer${writer}@example.org`,
            age: 20 + writer,
            address: { city: `city${writer}` },
            note: String(writer).repeat(50 + round),
        });
        const retriesBefore = await metric(kv, 'storage_kv_api_write_retries_total{operation="put"}');
        const statuses: number[] = [];
        for (let round = 0; round < 4; round++) {
            const puts = await Promise.all(
                Array.from({ length: 8 }, (_, w) => kv.put("contended", "one", whole(w, round))),
            );
            statuses.push(...puts.map((r) => r.status));
            const now = await kv.get("contended", "one");
            assert.ok(
                Array.from({ length: 8 }, (_, w) => whole(w, round)).some((d) => isDeepStrictEqual(now.body, d)),
                `not one writer's whole document: ${JSON.stringify(now.body)}`,
            );
        }
        // Puts and deletes together: a delete either finds the document or finds it deleted (404).
        const mixed = await Promise.all(
            Array.from({ length: 8 }, (_, w) =>
                w % 2 ? kv.del("contended", "one") : kv.put("contended", "one", whole(w, 9)),
            ),
        );
        assert.ok(
            mixed.every((r) => [200, 201, 204, 404].includes(r.status)),
            JSON.stringify(mixed.map((r) => r.status)),
        );
        const final = await kv.put("contended", "one", whole(3, 10));
        statuses.push(...mixed.map((r) => r.status), final.status);
        assert.deepEqual(
            statuses.filter((s) => s >= 300 && s !== 404),
            [],
            "an unconditional write failed (412 is only for a client's condition)",
        );
        assert.ok(
            (await metric(kv, 'storage_kv_api_write_retries_total{operation="put"}')) > retriesBefore,
            "the writers raced (the retries are counted)",
        );

        // The indexes agree with a scan: queries before the fold, then the folded pages.
        const docs = await allDocs("contended");
        assert.deepEqual([...docs.entries()], [["one", whole(3, 10)]]);
        for (let w = 0; w < 8; w++) {
            const found = await kv.query("contended", { index: "age", eq: 20 + w });
            assert.deepEqual(
                found.body.items.map((i) => i.key),
                w === 3 ? ["one"] : [],
            );
        }
        await settle();
        assert.equal((await kv.repair("contended")).status, 200);
        for (const [index, at] of [
            ["email", "email"],
            ["age", "age"],
            ["city", "address.city"],
        ]) {
            assert.deepEqual(await foldedPairs("contended", index), expectedPairs(docs, at), index);
        }
    });

    it("answers 503 SlowDown with Retry-After when a write loses every allowed attempt, and counts it", async () => {
        await kv.put("people", "busy", { n: 0 });
        let bumps = 0;
        // Another writer commits the document between each attempt's read and its commit.
        const beaten = await startKv({
            hooks: { afterLog: async () => void (await kv.put("people", "busy", { n: ++bumps })) },
        });
        const answer = await beaten.client.put("people", "busy", { n: -1 });
        assert.equal(answer.status, 503, JSON.stringify(answer.body));
        assert.equal(answer.body.error.code, "SlowDown");
        assert.equal(answer.retryAfter, "1");
        assert.equal(bumps, WRITE_ATTEMPTS, "as many attempts as allowed, no more");
        assert.deepEqual((await kv.get("people", "busy")).body, { n: bumps }, "the other writer's document stays");
        assert.equal(
            await metric(beaten.client, 'storage_kv_api_write_retries_total{operation="put"}'),
            WRITE_ATTEMPTS - 1,
        );
        assert.equal(await metric(beaten.client, 'storage_kv_api_write_retries_exhausted_total{operation="put"}'), 1);
        assert.equal(
            await metric(beaten.client, 'storage_kv_api_requests_total{operation="PutDocument",status="503"}'),
            1,
        );
    });

    it("serves Prometheus metrics without a token: requests by operation and status", async () => {
        const before = await metric(kv, 'storage_kv_api_requests_total{operation="GetDocument",status="200"}');
        const missing = await metric(kv, 'storage_kv_api_requests_total{operation="GetDocument",status="404"}');
        await kv.put("people", "counted", { n: 1 });
        await kv.get("people", "counted");
        await kv.get("people", "counted");
        await kv.get("people", "not-there");
        const res = await fetch(`${kv.url}/metrics`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
        const text = await res.text();
        for (const name of [
            "storage_kv_api_requests_total",
            "storage_kv_api_write_retries_total",
            "storage_kv_api_write_retries_exhausted_total",
            "storage_kv_api_pages_collected_total",
        ]) {
            assert.match(text, new RegExp(`^# TYPE ${name} counter$`, "m"));
        }
        assert.equal(
            await metric(kv, 'storage_kv_api_requests_total{operation="GetDocument",status="200"}'),
            before + 2,
        );
        assert.equal(
            await metric(kv, 'storage_kv_api_requests_total{operation="GetDocument",status="404"}'),
            missing + 1,
        );
        assert.ok(!text.includes("counted"), "no document key in the metrics");
    });

    it("keeps unique values unique, and lets a value go once its holder gave it up", async () => {
        assert.equal((await kv.put("people", "ben", { email: "ben@example.org" })).status, 201);
        const taken = await kv.put("people", "ben2", { email: "ben@example.org" });
        assert.equal(taken.status, 409);
        assert.match(taken.body.error.message, /unique index email/);
        const racers = await Promise.all(
            Array.from({ length: 8 }, (_, i) => kv.put("people", `racer${i}`, { email: "race@example.org" })),
        );
        assert.deepEqual(racers.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409]);
        assert.equal((await kv.put("people", "ben", { email: "ben@family.example" })).status, 200);
        // The holder moved on, but a write that claimed the value may still be in flight: not yet.
        assert.equal((await kv.put("people", "ben2", { email: "ben@example.org" })).status, 409);
        await settle();
        assert.equal((await kv.put("people", "ben2", { email: "ben@example.org" })).status, 201, "taken over");
        assert.equal((await kv.put("people", "ben3", { email: "ben@family.example" })).status, 409, "ben has it");
        assert.equal((await kv.del("people", "ben2")).status, 204);
        await settle();
        assert.equal((await kv.put("people", "ben3", { email: "ben@example.org" })).status, 201);
        const byEmail = await kv.query("people", { index: "email", eq: "ben@example.org" });
        assert.deepEqual(
            byEmail.body.items.map((i) => i.key),
            ["ben3"],
        );
    });

    it("keeps an idle connection open past node:http's 5 s: a pooled client's next request reuses it", async function () {
        if (backend !== s3Backends()[0]) this.skip(); // the HTTP server's, whatever the backend
        assert.ok(await reusesIdleConnection(`${kv.url}/healthz`, 6_000), "the server closed the idle connection");
    });

    it("answers queries exactly as a brute-force scan of the same documents (property)", async () => {
        await kv.call("PUT", "/v1/collections/things", { indexes: [{ path: "v" }, { path: "n.x" }] });
        const scalar = fc.oneof(
            fc.integer({ min: -50, max: 50 }),
            fc.double({ min: -1e6, max: 1e6, noNaN: true }),
            fc.string({ maxLength: 6, unit: "grapheme" }),
            fc.constantFrom("a", "ab", "é", "z", "", "日本", "😀"),
            fc.boolean(),
            fc.constant(null),
        );
        const docs = fc.sample(
            fc.record({
                v: fc.option(fc.oneof(scalar, fc.constant([1]), fc.constant({ o: 1 })), { nil: undefined }),
                n: fc.record({ x: fc.integer({ min: 0, max: 9 }) }),
            }),
            { numRuns: 80, seed: 42 },
        );
        const keyOf = (i: number) => `t${String(i).padStart(3, "0")}`;
        const put = (d: object, i: number) => kv.put("things", keyOf(i), JSON.parse(JSON.stringify(d)) as object);
        await several(docs.length, (i) => put(docs[i], i));
        await settle();
        assert.equal((await kv.repair("things")).status, 200);
        // Some documents change after the fold, some are deleted: queries must merge the pages with the log,
        // and drop what the pages still say about changed and deleted documents.
        const plain = (d: object) => JSON.parse(JSON.stringify(d)) as unknown;
        const current = new Map(docs.map((d, i) => [keyOf(i), plain(d)]));
        const changed = fc.sample(fc.record({ v: scalar, n: fc.record({ x: fc.integer({ min: 0, max: 9 }) }) }), {
            numRuns: 25,
            seed: 9,
        });
        await several(changed.length, (i) => put(changed[i], i * 3));
        changed.forEach((d, i) => current.set(keyOf(i * 3), plain(d)));
        await Promise.all([1, 4, 7, 10, 13].map((i) => kv.del("things", keyOf(i))));
        [1, 4, 7, 10, 13].forEach((i) => current.delete(keyOf(i)));
        assert.ok((await foldedPairs("things", "v")).length > 20, "the pages hold entries (so the merge is exercised)");

        const oracle = (q: Record<string, Scalar>) => {
            const bound = (k: string) => (q[k] === undefined ? undefined : encodeValue(q[k]));
            const kind = (encoded: string) =>
                encoded.startsWith("01") || encoded.startsWith("02") ? "bool" : encoded.slice(0, 2);
            const first = ["eq", "gt", "gte", "lt", "lte"].find((k) => q[k] !== undefined)!;
            const tag = kind(encodeValue(q[first]));
            return expectedPairs(current, "v")
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
                .map(([, key]) => key);
        };
        const queries = fc.oneof(
            scalar.map((v) => ({ eq: v })),
            fc.tuple(fc.integer({ min: -60, max: 60 }), fc.integer({ min: -60, max: 60 })).map(([a, b]) => ({
                gte: Math.min(a, b),
                lt: Math.max(a, b),
            })),
            fc.string({ maxLength: 2 }).map((s) => ({ gt: s })),
            fc.string({ maxLength: 2 }).map((s) => ({ lte: s })),
            fc.integer({ min: -60, max: 60 }).map((n) => ({ lte: n })),
            fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((n) => ({ gt: n })),
            fc.constantFrom({ eq: true }, { eq: null }, { gte: false, lte: true }, { gte: null }),
        );
        await fc.assert(
            fc.asyncProperty(
                queries,
                fc.constantFrom("asc", "desc"),
                fc.integer({ min: 1, max: 7 }),
                fc.boolean(),
                async (q, order, limit, viaGet) => {
                    const got: string[] = [];
                    let cursor: string | undefined;
                    for (let pages = 0; pages < 100; pages++) {
                        const params = new URLSearchParams({ index: "v", order, limit: String(limit) });
                        for (const [k, v] of Object.entries(q)) params.set(k, JSON.stringify(v));
                        if (cursor) params.set("cursor", cursor);
                        const page = viaGet
                            ? await kv.call("GET", `/v1/collections/things/query?${params.toString()}`)
                            : await kv.query("things", { index: "v", ...q, order, limit, cursor });
                        assert.equal(page.status, 200, JSON.stringify(page.body));
                        assert.ok(page.body.items.length <= limit);
                        for (const item of page.body.items) assert.deepEqual(item.data, current.get(item.key));
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
        const nested = await kv.query("things", { index: "n.x", eq: 3 });
        assert.deepEqual(
            nested.body.items.map((i) => i.key),
            expectedPairs(current, "n.x")
                .filter(([v]) => v === encodeValue(3))
                .map(([, k]) => k),
        );
        // Folded again, the pages equal a brute-force index of the documents.
        await settle();
        await kv.repair("things");
        assert.deepEqual(await foldedPairs("things", "v"), expectedPairs(await allDocs("things"), "v"));
        assert.equal(await logCount("things"), 0);
    });

    it("loses nothing when the process dies between a document's commit and its index, and repair folds it", async () => {
        const dies = () => {
            throw new Error("process died");
        };
        const crashing = await startKv({ hooks: { afterCommit: dies } });
        await assert.rejects(
            crashing.store.put("people", "carla", { email: "carla@example.org", age: 33 }),
            /process died/,
        );
        // The document is there, and queries find it before any repair.
        assert.equal((await kv.get("people", "carla")).status, 200);
        const before = await kv.query("people", { index: "age", eq: 33 });
        assert.deepEqual(
            before.body.items.map((i) => i.key),
            ["carla"],
        );

        // A write that died after its log record but before its commit leaves nothing a query returns.
        const dying = await startKv({ hooks: { afterLog: dies } });
        await assert.rejects(dying.store.put("people", "ghost", { email: "ghost@example.org", age: 33 }));
        assert.equal((await kv.get("people", "ghost")).status, 404);
        assert.ok((await logCount("people")) >= 2);

        // A compaction that dies before it swaps the manifest changes nothing: the log stays.
        await settle();
        const compactorDies = await startKv({ hooks: { beforeManifestSwap: dies } });
        await assert.rejects(compactorDies.store.repair("people"), /process died/);
        assert.ok((await logCount("people")) >= 2);

        const repaired = await kv.repair("people");
        assert.equal(repaired.status, 200);
        assert.ok(repaired.body.folded >= 2);
        assert.equal(await logCount("people"), 0);
        const docs = await allDocs("people");
        assert.ok(docs.has("carla") && !docs.has("ghost"));
        for (const index of ["email", "age"]) {
            assert.deepEqual(await foldedPairs("people", index), expectedPairs(docs, index), index);
        }
        assert.deepEqual(await foldedPairs("people", "city"), expectedPairs(docs, "address.city"));
        const after = await kv.query("people", { index: "age", eq: 33 });
        assert.deepEqual(
            after.body.items.map((i) => i.key),
            ["carla"],
        );
        // No stray pages: every page stored is one the manifest names or keeps for the page grace.
        assert.deepEqual(await storedPages("people"), [...pagesKept(await crashing.store.manifest("people"))].sort());
    });

    it("collects the pages compactions stopped naming once the grace is over, also after one died before collecting", async () => {
        // Long enough that a compaction swaps within half of it and a collection takes under a quarter, on a
        // loaded machine too.
        const timing = { ...TIMING, pageGraceMs: 6_000 };
        const { client, store } = await startKv({ timing });
        await client.call("PUT", "/v1/collections/paged", { indexes: [{ path: "n" }] });
        await several(60, (i) => client.put("paged", `p${i}`, { n: i % 10, pad: "x".repeat(20) }));
        await settle();
        assert.equal((await client.repair("paged")).status, 200);
        const named = (m: Awaited<ReturnType<Store["manifest"]>>) =>
            Object.values(m.indexes).flatMap((i) => i.pages.map((p) => p.obj));
        const first = await store.manifest("paged");
        assert.ok(named(first).length > 3, "several pages");
        await several(60, (i) => client.put("paged", `p${i}`, { n: (i * 7) % 13 }));
        await settle();

        // The compaction dies between its new manifest and the collection.
        const dies = await startKv({
            timing,
            hooks: {
                afterManifestSwap: () => {
                    throw new Error("process died");
                },
            },
        });
        await assert.rejects(dies.store.repair("paged"), /process died/);
        const second = await store.manifest("paged");
        const unnamed = async () => {
            const m = await store.manifest("paged");
            return (await storedPages("paged")).filter((p) => !named(m).includes(p));
        };
        assert.ok((await unnamed()).length > 0, "pages no index names any longer");
        // A query that read the previous manifest still finds every page it names, within the grace.
        const stored = await storedPages("paged");
        assert.deepEqual(
            named(first).filter((p) => !stored.includes(p)),
            [],
        );
        assert.deepEqual(
            second.retired?.map((r) => r.obj).sort(),
            named(first)
                .filter((p) => !named(second).includes(p))
                .sort(),
        );

        // Later runs, after the grace, collect them: what the dead one retired, then what the next one retired.
        const collectedBefore = await metric(client, "storage_kv_api_pages_collected_total");
        await sleep(timing.pageGraceMs + 100);
        const again = await client.repair("paged");
        assert.ok(again.body.collected > 0, JSON.stringify(again.body));
        const kept = await storedPages("paged");
        assert.deepEqual(
            named(second).filter((p) => !kept.includes(p)),
            [],
            "the pages the manifest before named stay for the grace",
        );
        await sleep(timing.pageGraceMs + 100);
        const last = await client.repair("paged");
        assert.equal(last.status, 200);
        assert.deepEqual(await unnamed(), []);
        assert.deepEqual((await store.manifest("paged")).retired, []);
        assert.equal(
            await metric(client, "storage_kv_api_pages_collected_total"),
            collectedBefore + again.body.collected + last.body.collected,
        );
        // Queries still answer as a scan does.
        const docs = await allDocs("paged");
        assert.deepEqual(await foldedPairs("paged", "n"), expectedPairs(docs, "n"));
        for (const n of [0, 5, 12]) {
            const found = await client.query("paged", { index: "n", eq: n, limit: 100 });
            assert.deepEqual(
                found.body.items.map((i) => i.key),
                expectedPairs(docs, "n")
                    .filter(([v]) => v === encodeValue(n))
                    .map(([, k]) => k),
            );
        }
    });

    it("builds an index added to a collection that already holds documents, and fails a unique one with duplicates", async () => {
        await kv.call("PUT", "/v1/collections/notes", { indexes: [] });
        for (let i = 0; i < 12; i++) await kv.put("notes", `n${i}`, { tag: i % 3 === 0 ? "todo" : "done", i });
        const added = await kv.call("PUT", "/v1/collections/notes", {
            indexes: [{ path: "tag" }, { name: "tagOnce", path: "tag", unique: true }],
        });
        assert.equal(added.status, 200);
        assert.deepEqual(
            added.body.indexes.map((i) => i.state),
            ["building", "building"],
        );
        const early = await kv.query("notes", { index: "tag", eq: "todo" });
        assert.equal(early.status, 409);
        assert.match(early.body.error.message, /index tag is still being built/);
        await kv.put("notes", "n12", { tag: "todo" }); // written while the index is being built
        await settle();
        await kv.repair("notes");
        const schema = await kv.call("GET", "/v1/collections/notes");
        assert.deepEqual(
            schema.body.indexes.map((i) => [i.name, i.state]),
            [
                ["tag", "ready"],
                ["tagOnce", "failed"],
            ],
        );
        assert.match(schema.body.indexes[1].reason!, /share a value of tag/);
        const todo = await kv.query("notes", { index: "tag", eq: "todo" });
        assert.deepEqual(
            todo.body.items.map((i) => i.key),
            ["n0", "n12", "n3", "n6", "n9"],
        );
        const failed = await kv.query("notes", { index: "tagOnce", eq: "todo" });
        assert.equal(failed.status, 409);
        assert.match(failed.body.error.message, /could not be built: documents share a value of tag/);
    });

    it("never returns a deleted document to a query running while documents are deleted", async () => {
        await kv.call("PUT", "/v1/collections/photos", { indexes: [{ path: "year" }] });
        await several(40, (i) => kv.put("photos", `p${i}`, { year: 2026, i }));
        await settle();
        await kv.repair("photos");
        const deleted = new Set<string>();
        const deleting = (async () => {
            for (let i = 0; i < 40; i += 2) {
                await kv.del("photos", `p${i}`);
                deleted.add(`p${i}`);
            }
        })();
        let rounds = 0;
        let sawSomeDeleted = false;
        while (deleted.size < 20 || rounds === 0) {
            const deletedBefore = new Set(deleted);
            const got = await kv.query("photos", { index: "year", eq: 2026, limit: 1000 });
            const keys = got.body.items.map((i) => i.key);
            assert.deepEqual(
                keys.filter((k) => deletedBefore.has(k)),
                [],
                "a deleted document was returned",
            );
            for (let i = 1; i < 40; i += 2) assert.ok(keys.includes(`p${i}`), `p${i} is missing`);
            sawSomeDeleted ||= deletedBefore.size > 0 && deletedBefore.size < 20;
            rounds++;
        }
        await deleting;
        assert.ok(sawSomeDeleted, "no query ran while deletes were under way");
        const final = await kv.query("photos", { index: "year", eq: 2026, limit: 1000 });
        assert.equal(final.body.items.length, 20);
        // Folding the deletes, concurrently with queries, changes nothing.
        await settle();
        const [, during] = await Promise.all([
            kv.repair("photos"),
            kv.query("photos", { index: "year", eq: 2026, limit: 7 }),
        ]);
        assert.ok(during.body.items.every((i) => !deleted.has(i.key)));
        assert.equal((await foldedPairs("photos", "year")).length, 20);
    });

    it("answers bad input with a 4xx that says what is wrong", async () => {
        const cases: [Promise<Answer>, number, RegExp][] = [
            [kv.put("people", "x", "{not json"), 400, /not valid JSON/],
            [kv.put("people", "x", "[1,2]"), 400, /JSON object/],
            [kv.put("people", "big", { blob: "x".repeat(70 * 1024) }), 413, /over the limit of 65536 bytes/],
            [kv.put("people", "bad\u0001key", {}), 400, /document key .*without control characters/],
            [kv.put("people", "k".repeat(513), {}), 400, /1-512 bytes/],
            [kv.put("nobody", "x", {}), 404, /no collection nobody/],
            [kv.get("nobody", "x"), 404, /no collection nobody/],
            [kv.get("people", "nobody-here"), 404, /no document nobody-here/],
            [kv.call("PUT", "/v1/collections/bad", { indexes: [{ path: "a..b" }] }), 400, /field path/],
            [kv.call("PUT", "/v1/collections/bad", { indexes: [{ path: "1a" }] }), 400, /field path/],
            [kv.call("PUT", "/v1/collections/bad", { indexes: [{ path: "a.b.c.d.e.f.g.h.i" }] }), 400, /1-8/],
            [kv.call("PUT", "/v1/collections/people", { indexes: [{ path: "age", unique: true }] }), 409, /exists/],
            [kv.call("PUT", "/v1/collections/Bad%20Name", {}), 400, /collection name/],
            [kv.query("people", { index: "shoe", eq: 1 }), 400, /people has no index shoe/],
            [kv.query("people", { index: "age" }), 400, /needs eq/],
            [kv.query("people", { index: "age", eq: [1] }), 400, /eq takes a string, number/],
            [kv.query("people", { index: "age", gt: 1, lt: "z" }), 400, /one type/],
            [kv.query("people", { index: "age", eq: 1, colour: "red" }), 400, /unknown query fields: colour/],
            [kv.query("people", { index: "age", eq: 1, cursor: "forged.cursor" }), 400, /cursor/],
            [kv.call("GET", "/v1/collections/people/query?index=age&eq=notjson"), 400, /eq is a JSON value/],
            [kv.call("GET", "/v1/collections/people/docs?limit=0"), 400, /limit/],
            [kv.put("people", "x", {}, { "If-None-Match": "abc" }), 400, /If-None-Match takes only \*/],
            [kv.call("PATCH", "/v1/collections/people/docs/x"), 405, /PATCH/],
        ];
        for (const [answer, status, message] of cases) {
            const got = await answer;
            assert.equal(got.status, status, JSON.stringify(got.body));
            assert.match(got.body.error.message, message);
        }
        const anonymous = await fetch(`${kv.url}/v1/collections/people`);
        assert.equal(anonymous.status, 401);
        assert.match(((await anonymous.json()) as Body).error.message, /bearer token/);
        const wrong = await new Client(kv.url, "wrong-token").get("people", "ana");
        assert.equal(wrong.status, 401);
        assert.equal((await fetch(`${kv.url}/healthz`)).status, 200);
        assert.equal((await fetch(`${kv.url}/readyz`)).status, 200);
    });

    it("answers 503 when storage-s3-api cannot be reached", async () => {
        const nowhere = s3Client(`http://127.0.0.1:${await freePort()}`, "id", "secret", { logger: quietLogger });
        const objects = new JsonObjects(nowhere, "kv-store");
        const store = new Store(objects, new Collections(objects, 100), { secret, timing: TIMING });
        const server = createKvServer({ store, tokens: { [token]: "family-app" } });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        started.push(server);
        const cut = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, token);
        const got = await cut.get("people", "ana");
        assert.equal(got.status, 503);
        assert.match(got.body.error.message, /storage service is unavailable/);
    });

    it("leaves no document content nor indexed value readable in the backend's files", async () => {
        const marker = `unique-secret-${randomBytes(6).toString("hex")}`;
        await kv.put("people", "dora", { email: `${marker}@example.org`, address: { city: marker }, diary: marker });
        await settle();
        await kv.repair("people");
        assert.ok(
            (await foldedPairs("people", "city")).some(([, key]) => key === "dora"),
            "dora was folded",
        );
        // Written straight to the backend, in the clear: the files read below are where it keeps this bucket.
        const control = `control-${randomBytes(6).toString("hex")}`;
        await chain.direct.send(new PutObjectCommand({ Bucket: "kv-store", Key: `control/${control}`, Body: control }));
        const stored = filesUnder(chain.backend.dir);
        const inFiles = (text: string) => stored.some((f) => f.bytes.includes(text) || f.path.includes(text));
        assert.ok(inFiles(control), "the backend's files were not read");
        const forms = [marker, Buffer.from(marker).toString("hex"), Buffer.from(marker).toString("base64")];
        for (const form of forms) assert.ok(!inFiles(form), `${form} in the backend's files`);
    });

    /** The service as its own process (src/main.ts), its secrets in files, with `settings` on top. */
    async function spawnService(secrets: string, processToken: string, settings: Record<string, string> = {}) {
        const file = (name: string, content: string) => {
            fs.writeFileSync(path.join(secrets, name), content, { mode: 0o600 });
            return path.join(secrets, name);
        };
        const port = await freePort();
        const child = spawn(process.execPath, ["--require", "tsx/cjs", "src/main.ts"], {
            cwd: path.join(__dirname, ".."),
            stdio: ["ignore", "pipe", "pipe"],
            env: {
                ...process.env,
                LISTEN: `127.0.0.1:${port}`,
                STORAGE_S3_ENDPOINT: s3api.url,
                TOKENS_FILE: file("tokens.json", JSON.stringify({ [processToken]: "family-app" })),
                S3_CREDENTIALS_FILE: file(
                    "s3.json",
                    JSON.stringify({ accessKeyId: s3api.accessKey.id, secretAccessKey: s3api.accessKey.secret }),
                ),
                SECRET_KEY_FILE: file("secret", randomBytes(32).toString("base64")),
                ...settings,
            },
        });
        const seen = { output: "" };
        child.stdout.on("data", (d: Buffer) => (seen.output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (seen.output += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
        return { child, port, seen, exited };
    }

    it("refuses to start with a page size that is not a whole number in range, naming the setting", async () => {
        const secrets = fs.mkdtempSync(path.join(os.tmpdir(), "storage-kv-api-"));
        try {
            for (const bad of ["64k", "100", "-1", "99999999999"]) {
                const { child, seen, exited } = await spawnService(secrets, "t", { PAGE_BYTES: bad });
                const code = await Promise.race([exited, sleep(30_000).then(() => "running")]);
                child.kill("SIGKILL");
                assert.equal(code, 1, `PAGE_BYTES=${bad}: ${seen.output}`);
                assert.match(seen.output, /PAGE_BYTES must be a whole number from 256 to 16777216/);
            }
        } finally {
            fs.rmSync(secrets, { recursive: true, force: true });
        }
    });

    it("runs as its container does: secrets from files, ready after repair, drains on SIGTERM, logs no secrets", async () => {
        const secrets = fs.mkdtempSync(path.join(os.tmpdir(), "storage-kv-api-"));
        const processToken = randomBytes(24).toString("base64url");
        const { child, port, seen, exited } = await spawnService(secrets, processToken, { PAGE_BYTES: "1024" });
        try {
            const url = `http://127.0.0.1:${port}`;
            let ready = 0;
            for (let i = 0; i < 150 && ready !== 200; i++) {
                ready = await fetch(`${url}/readyz`).then(
                    (r) => r.status,
                    () => 0,
                );
                if (ready !== 200) await sleep(100);
            }
            assert.equal(ready, 200, seen.output);
            const client = new Client(url, processToken);
            const content = `diary-${randomBytes(6).toString("hex")}`;
            assert.equal(
                (await client.put("people", "eve", { email: `${content}@example.org`, note: content })).status,
                201,
            );
            const inFlight = client.query("people", { index: "email", eq: `${content}@example.org` });
            await sleep(5);
            child.kill("SIGTERM");
            const answered = await inFlight;
            assert.equal(answered.status, 200, "the request in flight finished");
            assert.deepEqual(
                answered.body.items.map((i) => i.key),
                ["eve"],
            );
            assert.equal(await exited, 0, seen.output);
            const lines = seen.output
                .trim()
                .split("\n")
                .filter((l) => l.startsWith("{")) // stderr may hold Node's own warnings
                .map((l) => JSON.parse(l) as { message: string; route?: string });
            assert.ok(lines.some((l) => l.message === "repaired"));
            assert.ok(lines.some((l) => l.route === "PUT /v1/collections/{collection}/docs/{key}"));
            assert.ok(lines.some((l) => l.message === "draining"));
            for (const secret of [processToken, content, "eve", s3api.accessKey.secret]) {
                assert.ok(!seen.output.includes(secret), "the log holds a secret, a key or content");
            }
        } finally {
            child.kill("SIGKILL");
            fs.rmSync(secrets, { recursive: true, force: true });
        }
    });

    it("describes every route it serves in openapi.yaml, and nothing else", () => {
        const spec = yaml.load(fs.readFileSync(path.join(__dirname, "..", "openapi.yaml"), "utf8")) as {
            paths: Record<string, Record<string, unknown>>;
        };
        const described = Object.entries(spec.paths)
            .flatMap(([p, ops]) =>
                Object.keys(ops)
                    .filter((m) => ["get", "put", "post", "delete", "patch", "head"].includes(m))
                    .map((m) => `${m.toUpperCase()} ${p}`),
            )
            .sort();
        const served = servedRoutes()
            .map((r) => `${r.method} ${r.path}`)
            .sort();
        assert.deepEqual(described, served);
    });
});
