// storage-kv-api next to plain S3 calls on storage-s3-api, side by side in one run: put and get alternate
// between the two paths request by request (so that a change of the machine's load touches both alike), with
// latency (p50, p99), throughput and the S3 calls each kv-api operation made; indexed-query latency; then an indexed query against a full scan on collections of
// BENCH_KV_DOCS documents (default 10000,100000). Writes .bench/storage-kv-api-<time>.json with the machine's
// conditions. storage-s3-api runs as its own process; this service and the client share this one.
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { createTransitKey, s3Client, startMinio, startOpenBaoDev, writeBenchReport } from "@peoples-cloud/testkit";
import { spawnService } from "@peoples-cloud/storage-s3-api/test/chain";
import { Collections } from "../src/collections";
import { JsonObjects } from "../src/objects";
import { createKvServer } from "../src/server";
import { quietLogger, Store } from "../src/store";

interface Figures {
    operation: string;
    /** The kv-api's client is node:http with keep-alive, as the SDK's; fetch (undici) for comparison. */
    path: "kv-api" | "kv-api, fetch client" | "direct S3";
    count: number;
    p50Ms: number;
    p99Ms: number;
    opsPerSecond: number;
    /** S3 requests to storage-s3-api per operation. */
    s3CallsPerOp?: number;
}

/** S3 requests the bench's client has sent (kv-api in this process shares it). */
let s3Calls = 0;

function figures(operation: string, p: Figures["path"], latencies: number[], calls: number): Figures {
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    const seconds = latencies.reduce((a, b) => a + b, 0) / 1000;
    const count = latencies.length;
    return {
        operation,
        path: p,
        count,
        p50Ms: at(0.5),
        p99Ms: at(0.99),
        opsPerSecond: count / seconds,
        s3CallsPerOp: calls / count,
    };
}

async function timed(run: () => Promise<unknown>): Promise<{ ms: number; calls: number }> {
    const calls = s3Calls;
    const t = performance.now();
    await run();
    return { ms: performance.now() - t, calls: s3Calls - calls };
}

async function measure(operation: string, p: Figures["path"], count: number, run: (i: number) => Promise<unknown>) {
    const latencies: number[] = [];
    let calls = 0;
    for (let i = 0; i < count; i++) {
        const one = await timed(() => run(i));
        latencies.push(one.ms);
        calls += one.calls;
    }
    return figures(operation, p, latencies, calls);
}

/** The paths' operations in turns, each path first as often as the others. */
async function sideBySide(
    operation: string,
    count: number,
    paths: { path: Figures["path"]; run: (i: number) => Promise<unknown> }[],
): Promise<Figures[]> {
    const times = paths.map(() => [] as number[]);
    const calls = paths.map(() => 0);
    for (let i = 0; i < count; i++) {
        for (let j = 0; j < paths.length; j++) {
            const k = (i + j) % paths.length;
            const one = await timed(() => paths[k].run(i));
            times[k].push(one.ms);
            calls[k] += one.calls;
        }
    }
    return paths.map((p, k) => figures(operation, p.path, times[k], calls[k]));
}

/** Runs `work` over 0..count-1 with at most `width` at a time. */
async function bounded(count: number, width: number, work: (i: number) => Promise<unknown>) {
    let next = 0;
    await Promise.all(
        Array.from({ length: width }, async () => {
            while (next < count) await work(next++);
        }),
    );
}

async function main(): Promise<void> {
    // BENCH_KV_DOCS=0 leaves the scans out.
    const sizes = (process.env.BENCH_KV_DOCS ?? "10000,100000")
        .split(",")
        .map(Number)
        .filter((n) => n > 0);
    const [minio, bao] = await Promise.all([startMinio(), startOpenBaoDev()]);
    await createTransitKey(bao, "storage-s3-api");
    const s3api = await spawnService(minio, bao);
    const token = randomBytes(24).toString("base64url");
    const s3 = s3Client(s3api.url, s3api.accessKey.id, s3api.accessKey.secret, { maxAttempts: 3, logger: quietLogger });
    s3.middlewareStack.add(
        (next) => (args) => {
            s3Calls++;
            return next(args);
        },
        { step: "initialize", name: "countS3Calls" },
    );
    await s3.send(new CreateBucketCommand({ Bucket: "kv-store" }));
    const objects = new JsonObjects(s3, "kv-store");
    // The service's own timing but for a settle time of 5 s instead of 20 s, so that each phase's log can be
    // folded soon after it ends; repairs also start on their own every 256 writes, as in the service.
    const timing = { writeDeadlineMs: 4_900, schemaTtlMs: 100, clockSkewMs: 0 };
    const store = new Store(objects, new Collections(objects, timing.schemaTtlMs), { secret: randomBytes(32), timing });
    const server = createKvServer({ store, tokens: { [token]: "bench" } });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const kv = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/collections`;
    // node:http with keep-alive, the HTTP client the SDK uses for the direct calls: the two paths differ by
    // the kv-api, not by their client libraries. fetch is measured beside it for gets.
    const agent = new http.Agent({ keepAlive: true });
    const call = async (method: string, route: string, body?: unknown) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
            const req = http.request(`${kv}/${route}`, {
                method,
                agent,
                headers: {
                    Authorization: `Bearer ${token}`,
                    ...(payload === undefined ? {} : { "Content-Length": Buffer.byteLength(payload) }),
                },
            });
            req.on("error", reject).on("response", (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c)).on("error", reject);
                res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
            });
            req.end(payload);
        });
        if (status >= 300) throw new Error(`${method} ${route}: ${status} ${text}`);
        return text ? (JSON.parse(text) as { items?: unknown[]; cursor?: string }) : {};
    };
    const fetchGet = async (route: string) => {
        const res = await fetch(`${kv}/${route}`, { headers: { Authorization: `Bearer ${token}` } });
        const text = await res.text();
        if (res.status >= 300) throw new Error(`GET ${route}: ${res.status} ${text}`);
        return JSON.parse(text) as unknown;
    };
    /** Lets the log age past the settle time and folds it; the repair's seconds and records folded. */
    const settle = async (c: string) => {
        await new Promise((r) => setTimeout(r, store.settleMs + 200));
        const started = performance.now();
        const report = (await call("POST", `${c}/repair`)) as { folded?: number };
        return { seconds: (performance.now() - started) / 1000, folded: report.folded ?? 0 };
    };
    const person = (i: number) => ({
        name: `person ${i}`,
        email: `p${i}@example.org`,
        group: i % 1000,
        note: "x".repeat(200),
    });

    try {
        await call("PUT", "people", { indexes: [{ path: "email", unique: true }, { path: "group" }] });
        const n = 300;
        // The direct objects hold what kv-api stores for a document ({key, data}): a GET of the same size.
        const results: Figures[] = [
            ...(await sideBySide("put", n, [
                { path: "kv-api", run: (i) => call("PUT", `people/docs/p${i}`, person(i)) },
                {
                    path: "direct S3",
                    run: (i) =>
                        s3.send(
                            new PutObjectCommand({
                                Bucket: "kv-store",
                                Key: `direct/p${i}`,
                                Body: JSON.stringify({ key: `p${i}`, data: person(i) }),
                            }),
                        ),
                },
            ])),
            ...(await sideBySide("get", n, [
                { path: "kv-api", run: (i) => call("GET", `people/docs/p${i}`) },
                { path: "kv-api, fetch client", run: (i) => fetchGet(`people/docs/p${i}`) },
                {
                    path: "direct S3",
                    run: async (i) => {
                        const got = await s3.send(new GetObjectCommand({ Bucket: "kv-store", Key: `direct/p${i}` }));
                        return JSON.parse(await got.Body!.transformToString()) as unknown;
                    },
                },
            ])),
        ];
        await settle("people");
        results.push(
            await measure("indexed query (eq, 1 match)", "kv-api", n, (i) =>
                call("POST", "people/query", { index: "email", eq: `p${i}@example.org` }),
            ),
        );

        const scans = [];
        for (const size of sizes) {
            const c = `scan${size}`;
            await call("PUT", c, { indexes: [{ path: "group" }] });
            const loadStarted = performance.now();
            await bounded(size, 16, (i) => call("PUT", `${c}/docs/d${i}`, person(i)));
            const loadSeconds = (performance.now() - loadStarted) / 1000;
            const repair = await settle(c);
            const wanted = size / 1000; // documents per group
            const indexed = await measure(`indexed query, ${size} docs`, "kv-api", 20, async (i) => {
                const out = await call("POST", `${c}/query`, { index: "group", eq: i * 7, limit: 1000 });
                if (out.items?.length !== wanted) throw new Error(`query found ${out.items?.length}`);
            });
            const ranged = await measure(`range query (limit 20), ${size} docs`, "kv-api", 20, async (i) => {
                const out = await call("POST", `${c}/query`, { index: "group", gte: i * 7, lt: i * 7 + 3, limit: 20 });
                if (out.items?.length !== Math.min(20, 3 * wanted)) throw new Error(`range found ${out.items?.length}`);
            });
            // A full scan: every document read and filtered, as without the index.
            const scanStarted = performance.now();
            let found = 0;
            let cursor: string | undefined;
            do {
                const page = (await call("GET", `${c}/docs?limit=1000${cursor ? `&cursor=${cursor}` : ""}`)) as {
                    items: { key: string }[];
                    cursor?: string;
                };
                const docs = await Promise.all(
                    page.items.map(
                        (d) => call("GET", `${c}/docs/${encodeURIComponent(d.key)}`) as Promise<{ group?: number }>,
                    ),
                );
                found += docs.filter((d) => d.group === 7).length;
                cursor = page.cursor;
            } while (cursor);
            if (found !== wanted) throw new Error(`scan found ${found}`);
            const scanMs = performance.now() - scanStarted;
            scans.push({
                documents: size,
                loadSeconds,
                finalRepairSeconds: repair.seconds,
                finalRepairFolded: repair.folded,
                foldedPerSecond: repair.folded / repair.seconds,
                indexedP50Ms: indexed.p50Ms,
                indexedP99Ms: indexed.p99Ms,
                rangeP50Ms: ranged.p50Ms,
                rangeP99Ms: ranged.p99Ms,
                fullScanMs: scanMs,
                scanOverIndexed: scanMs / indexed.p50Ms,
            });
        }

        const p50 = (op: string, p: Figures["path"]) =>
            results.find((r) => r.operation === op && r.path === p)?.p50Ms ?? NaN;
        const ratios = {
            put: p50("put", "kv-api") / p50("put", "direct S3"),
            get: p50("get", "kv-api") / p50("get", "direct S3"),
            getFetchClient: p50("get", "kv-api, fetch client") / p50("get", "direct S3"),
        };
        const out = writeBenchReport(
            "storage-kv-api",
            "client and storage-kv-api in this process; storage-s3-api, MinIO and OpenBao beside it; loopback",
            { results, ratios, scans },
        );
        console.table(
            results.map((r) => ({
                ...r,
                p50Ms: r.p50Ms.toFixed(2),
                p99Ms: r.p99Ms.toFixed(2),
                opsPerSecond: r.opsPerSecond.toFixed(1),
                s3CallsPerOp: r.s3CallsPerOp?.toFixed(2),
            })),
        );
        console.log("kv-api p50 / direct S3 p50:", ratios);
        console.table(scans);
        console.log(`written to ${out}`);
    } finally {
        server.closeAllConnections();
        server.close();
        await s3api.stop();
        await Promise.all([minio.stop(), bao.stop()]);
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
