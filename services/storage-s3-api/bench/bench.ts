// storage-s3-api against its S3 backends directly, SeaweedFS beside MinIO, side by side in one run: PUT and GET
// of 4 KiB, 1 MiB and 64 MiB objects in alternating rounds, with the CPU each process spent (client, service,
// backend) and so how many of the machine's cores each path kept busy, then the service's peak memory while
// streaming 2 GiB each way. A third path per backend goes through relay.ts, which does only the service's AES
// work on the bytes: what a Node process doing that work in the path reaches without HTTP, signatures or the
// SDK. A fourth path per backend is rclone's own encrypting gateway (`rclone serve s3` over a `crypt` remote on
// the same backend, from the tools cache's clients tier), the reference the service's ratios are set against.
// The backends are those of PEOPLES_CLOUD_S3_BACKENDS (default: all). BENCH_PIN=1 pins the services and
// the relays to one core, the client and the backends to the other. Writes the figures and the machine's
// conditions to .bench/storage-s3-api-<time>.json (ignored by git) and prints them.
import { execFileSync, spawn } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import { Readable } from "node:stream";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import {
    createTransitKey,
    freePort,
    type S3Backend,
    type S3Server,
    s3Backends,
    s3Client,
    startOpenBaoDev,
    startS3Backend,
    toolsBinDir,
    waitUntil,
    writeBenchReport,
} from "@peoples-cloud/testkit";
import { type ServiceProcess, spawnService } from "../test/chain";

const cases = [
    { name: "4 KiB", size: 4 * 1024, count: 300 },
    { name: "1 MiB", size: 1024 * 1024, count: 40 },
    { name: "64 MiB", size: 64 * 1024 * 1024, count: 3 },
];

const ways = ["direct", "relay", "encrypted", "rclone"] as const;
type Way = (typeof ways)[number];
/** A backend and a way to it, e.g. "seaweedfs encrypted". */
type Path = `${S3Backend} ${Way}`;

interface Result {
    case: string;
    backend: S3Backend;
    path: Way;
    objects: number;
    putOpsPerSecond: number;
    getOpsPerSecond: number;
    putMiBPerSecond: number;
    getMiBPerSecond: number;
    serviceCpuSecondsPerGiB?: number;
    /** CPU seconds per GiB moved, per process and phase; "service" is the relay on the relay path. */
    cpuSecondsPerGiB: Record<"put" | "get", { client: number; service: number; backend: number }>;
    /** Total CPU over wall time: 2 means both cores were busy, so the path was bound by CPU. */
    coresBusy: Record<"put" | "get", number>;
}

const client = (endpoint: string, accessKeyId: string, secretAccessKey: string) =>
    s3Client(endpoint, accessKeyId, secretAccessKey, { maxAttempts: 3 });

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuSeconds(pid: number | undefined): number {
    if (!pid) return 0;
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100 per second).
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds so far of this process (the client), the service (or relay) and the backend. */
function cpuNow(servicePid: number | undefined, backendPid: number | undefined) {
    const own = process.cpuUsage();
    return { client: (own.user + own.system) / 1e6, service: cpuSeconds(servicePid), backend: cpuSeconds(backendPid) };
}
type CpuSample = ReturnType<typeof cpuNow>;
const cpuSince = (before: CpuSample, after: CpuSample): CpuSample => ({
    client: after.client - before.client,
    service: after.service - before.service,
    backend: after.backend - before.backend,
});
const totalCpu = (c: CpuSample) => c.client + c.service + c.backend;

/** The process's resident memory now and at its peak so far, in MiB, from /proc. */
function memoryMiB(pid: number | undefined): { rss: number; peak: number } {
    const status = pid ? fs.readFileSync(`/proc/${pid}/status`, "utf8") : "";
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/** `size` bytes of pseudo-random content, made as it is read: the client holds one chunk at a time. */
function generated(size: number): Readable {
    const chunk = randomBytes(1024 * 1024);
    let left = size;
    return new Readable({
        read() {
            const n = Math.min(left, chunk.length);
            left -= n;
            this.push(n ? chunk.subarray(0, n) : null);
        },
    });
}

/**
 * Reads a body to its end, as a client streaming it to disk would. The SDK's `transformToByteArray` costs
 * the client about 3 CPU-s more per GiB, and on cores it shares with the service and the backend that would
 * weigh on both paths' figures.
 */
async function drain(body: Readable): Promise<number> {
    let read = 0;
    for await (const chunk of body) read += (chunk as Buffer).length;
    return read;
}

/** relay.ts in its own process, in front of `target` (host:port). */
async function startRelay(target: string) {
    const port = await freePort();
    const child = spawn(process.execPath, ["--require", "tsx/cjs", "bench/relay.ts"], {
        cwd: `${__dirname}/..`,
        stdio: "inherit",
        env: { ...process.env, LISTEN: `127.0.0.1:${port}`, TARGET: target },
    });
    const listening = () =>
        new Promise<boolean>((resolve) => {
            const probe = net.connect(port, "127.0.0.1", () => resolve(true)).on("error", () => resolve(false));
            probe.on("connect", () => probe.destroy());
        });
    await waitUntil("the relay", listening, child);
    return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => child.kill() };
}

/**
 * rclone's encrypting S3 gateway on `backend`: `rclone serve s3` over a crypt remote (names and content
 * encrypted, rclone's defaults) on a bucket of its own, its config in a temporary file, on a loopback port.
 */
async function startRcloneGateway(backend: S3Server) {
    const rclone = path.join(toolsBinDir("clients"), "rclone");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-bench-rclone-"));
    const config = path.join(dir, "rclone.conf");
    const obscure = (secret: string) => execFileSync(rclone, ["obscure", secret], { encoding: "utf8" }).trim();
    fs.writeFileSync(
        config,
        [
            "[backend]",
            "type = s3",
            "provider = Minio",
            `endpoint = ${backend.url}`,
            `access_key_id = ${backend.accessKeyId}`,
            `secret_access_key = ${backend.secretAccessKey}`,
            "region = us-east-1",
            "force_path_style = true",
            "",
            "[crypt]",
            "type = crypt",
            "remote = backend:rclone-crypt",
            `password = ${obscure(randomBytes(24).toString("base64url"))}`,
            `password2 = ${obscure(randomBytes(24).toString("base64url"))}`,
            "",
        ].join("\n"),
        { mode: 0o600 },
    );
    const port = await freePort();
    const key = { id: "bench", secret: randomBytes(18).toString("base64url") };
    const child = spawn(
        rclone,
        [
            "serve",
            "s3",
            "crypt:",
            "--config",
            config,
            "--addr",
            `127.0.0.1:${port}`,
            "--auth-key",
            `${key.id},${key.secret}`,
        ],
        { stdio: ["ignore", "inherit", "inherit"], env: { PATH: process.env.PATH ?? "", HOME: dir } },
    );
    const listening = () =>
        new Promise<boolean>((resolve) => {
            const probe = net.connect(port, "127.0.0.1", () => resolve(true)).on("error", () => resolve(false));
            probe.on("connect", () => probe.destroy());
        });
    await waitUntil("rclone serve s3", listening, child);
    return {
        url: `http://127.0.0.1:${port}`,
        pid: child.pid,
        key,
        stop: () => {
            child.kill();
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** Pins a process and all its threads to `cpus` (a taskset list). */
const pin = (cpus: string, pid: number | undefined) => execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)]);

interface Phase {
    putSeconds: number;
    getSeconds: number;
    putCpu: CpuSample;
    getCpu: CpuSample;
}

/** PUTs `count` copies of `body` under `prefix`, then GETs them back, timing each phase and its CPU. */
async function measure(
    s3: S3Client,
    prefix: string,
    body: Buffer,
    count: number,
    servicePid: number | undefined,
    backendPid: number | undefined,
): Promise<Phase> {
    const putCpuBefore = cpuNow(servicePid, backendPid);
    let started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
        await s3.send(new PutObjectCommand({ Bucket: "bench", Key: `${prefix}/${i}`, Body: body }));
    }
    const putSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const putCpu = cpuSince(putCpuBefore, cpuNow(servicePid, backendPid));
    const getCpuBefore = cpuNow(servicePid, backendPid);
    started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
        const got = await s3.send(new GetObjectCommand({ Bucket: "bench", Key: `${prefix}/${i}` }));
        const read = await drain(got.Body as Readable);
        if (read !== body.length) throw new Error(`short read: ${read}`);
    }
    const getSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { putSeconds, getSeconds, putCpu, getCpu: cpuSince(getCpuBefore, cpuNow(servicePid, backendPid)) };
}

const median = (values: number[]) => {
    const sorted = [...values].sort((x, y) => x - y);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** One round's PUT and GET throughput. */
function mibPerSecond(c: (typeof cases)[number], p: Phase): { put: number; get: number } {
    const mib = (c.size * c.count) / 1024 ** 2;
    return { put: mib / p.putSeconds, get: mib / p.getSeconds };
}

/** One path's figures for a case over all its timed rounds. */
function summarise(c: (typeof cases)[number], backend: S3Backend, way: Way, runs: Phase[]): Result {
    const objects = c.count * runs.length;
    const mib = (c.size * objects) / 1024 ** 2;
    const sum = (pick: (p: Phase) => number) => runs.reduce((total, p) => total + pick(p), 0);
    const cpu = (phase: "putCpu" | "getCpu"): CpuSample => ({
        client: sum((p) => p[phase].client),
        service: sum((p) => p[phase].service),
        backend: sum((p) => p[phase].backend),
    });
    const perGiB = (sample: CpuSample) => ({
        client: (sample.client / mib) * 1024,
        service: (sample.service / mib) * 1024,
        backend: (sample.backend / mib) * 1024,
    });
    const [putSeconds, getSeconds] = [sum((p) => p.putSeconds), sum((p) => p.getSeconds)];
    const [putCpu, getCpu] = [cpu("putCpu"), cpu("getCpu")];
    return {
        case: c.name,
        backend,
        path: way,
        objects,
        putOpsPerSecond: objects / putSeconds,
        getOpsPerSecond: objects / getSeconds,
        putMiBPerSecond: mib / putSeconds,
        getMiBPerSecond: mib / getSeconds,
        serviceCpuSecondsPerGiB:
            way === "encrypted" ? ((putCpu.service + getCpu.service) / (2 * mib)) * 1024 : undefined,
        cpuSecondsPerGiB: { put: perGiB(putCpu), get: perGiB(getCpu) },
        coresBusy: { put: totalCpu(putCpu) / putSeconds, get: totalCpu(getCpu) / getSeconds },
    };
}

/** A way to a backend: the client, and the processes whose CPU it spends. */
interface Target {
    s3: S3Client;
    /** The service or the relay in the path; none on the direct path. */
    pid: number | undefined;
    backend: S3Server;
}

/** Median over the timed rounds of `reference`'s seconds over `path`'s: above 1, `path` is faster. */
function speedup(
    runs: Partial<Record<Path, Phase[]>>,
    path_: Path,
    reference: Path,
    phase: "putSeconds" | "getSeconds",
) {
    const ratios = runs[path_]!.map((p, i) => runs[reference]![i][phase] / p[phase]);
    return { median: median(ratios), rounds: ratios };
}

async function main(): Promise<void> {
    const backends = s3Backends();
    const bao = await startOpenBaoDev();
    const started: { stop(): unknown }[] = [bao];
    try {
        await createTransitKey(bao, "storage-s3-api");
        const targets: Partial<Record<Path, Target>> = {};
        let streamThrough: ServiceProcess | undefined;
        for (const kind of backends) {
            const backend = await startS3Backend(kind);
            started.push(backend);
            // BENCH_CPU_PROF=<dir> writes a CPU profile of each service, to see where its time goes.
            const service = await spawnService(backend, bao, {
                execArgv: process.env.BENCH_CPU_PROF
                    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
                    : [],
            });
            started.push(service);
            streamThrough ??= service;
            const relay = await startRelay(new URL(backend.url).host);
            started.push(relay);
            const gateway = await startRcloneGateway(backend);
            started.push(gateway);
            if (process.env.BENCH_PIN) {
                pin("0", backend.pid);
                for (const pid of [service.child.pid, relay.pid, gateway.pid]) pin("1", pid);
            }
            const direct = client(backend.url, backend.accessKeyId, backend.secretAccessKey);
            targets[`${kind} direct`] = { s3: direct, pid: undefined, backend };
            targets[`${kind} relay`] = {
                s3: client(relay.url, backend.accessKeyId, backend.secretAccessKey),
                pid: relay.pid,
                backend,
            };
            targets[`${kind} encrypted`] = {
                s3: client(service.url, service.accessKey.id, service.accessKey.secret),
                pid: service.child.pid,
                backend,
            };
            const viaRclone = client(gateway.url, gateway.key.id, gateway.key.secret);
            targets[`${kind} rclone`] = { s3: viaRclone, pid: gateway.pid, backend };
            await direct.send(new CreateBucketCommand({ Bucket: "bench" }));
            await direct.send(new CreateBucketCommand({ Bucket: "rclone-crypt" }));
            await viaRclone.send(new CreateBucketCommand({ Bucket: "bench" }));
        }
        if (process.env.BENCH_PIN) pin("0", process.pid);
        const paths = Object.keys(targets) as Path[];

        // Each case runs in rounds that alternate all paths, after one untimed warm-up round, so a change in
        // the machine's speed during the run (it is shared) shows in all paths alike; each ratio is the
        // median of the rounds' ratios.
        const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
        const results: Result[] = [];
        const ratios: {
            case: string;
            backend: S3Backend;
            /** Encrypted over direct, on this backend. */
            putRatio: number;
            getRatio: number;
            putRatios: number[];
            getRatios: number[];
            /** Relay over direct. */
            relayPutRatio: number;
            relayGetRatio: number;
            /** rclone's crypt gateway over direct. */
            rclonePutRatio: number;
            rcloneGetRatio: number;
            /**
             * The service against rclone's gateway, round by round (above 1, the service is faster): the
             * target's comparison, without the direct path's own spread in between.
             */
            againstRclone: { put: number; get: number };
            /** Each timed round's MiB/s, to tell a slow direct round from a fast encrypted one. */
            roundsMiBPerSecond: Record<Way, { put: number; get: number }>[];
        }[] = [];
        /** Each backend's paths against MinIO's same path: above 1, that backend is faster. */
        const againstMinio: { case: string; backend: S3Backend; way: Way; put: number; get: number }[] = [];
        for (const c of cases) {
            const body = randomBytes(c.size);
            const runs: Partial<Record<Path, Phase[]>> = {};
            for (let round = 0; round <= rounds; round++) {
                for (const path_ of paths) {
                    const { s3, pid, backend } = targets[path_]!;
                    const phase = await measure(s3, `${path_}/${c.name}`, body, c.count, pid, backend.pid).catch(
                        (err: unknown) => {
                            throw new Error(`${path_}, ${c.name}: ${String(err)}`, { cause: err });
                        },
                    );
                    if (round > 0) (runs[path_] ??= []).push(phase);
                }
            }
            for (const kind of backends) {
                for (const way of ways) results.push(summarise(c, kind, way, runs[`${kind} ${way}`]!));
                const [put, get] = [
                    speedup(runs, `${kind} encrypted`, `${kind} direct`, "putSeconds"),
                    speedup(runs, `${kind} encrypted`, `${kind} direct`, "getSeconds"),
                ];
                ratios.push({
                    case: c.name,
                    backend: kind,
                    putRatio: put.median,
                    getRatio: get.median,
                    putRatios: put.rounds,
                    getRatios: get.rounds,
                    relayPutRatio: speedup(runs, `${kind} relay`, `${kind} direct`, "putSeconds").median,
                    relayGetRatio: speedup(runs, `${kind} relay`, `${kind} direct`, "getSeconds").median,
                    rclonePutRatio: speedup(runs, `${kind} rclone`, `${kind} direct`, "putSeconds").median,
                    rcloneGetRatio: speedup(runs, `${kind} rclone`, `${kind} direct`, "getSeconds").median,
                    againstRclone: {
                        put: speedup(runs, `${kind} encrypted`, `${kind} rclone`, "putSeconds").median,
                        get: speedup(runs, `${kind} encrypted`, `${kind} rclone`, "getSeconds").median,
                    },
                    roundsMiBPerSecond: runs[`${kind} direct`]!.map((_, i) => ({
                        direct: mibPerSecond(c, runs[`${kind} direct`]![i]),
                        relay: mibPerSecond(c, runs[`${kind} relay`]![i]),
                        encrypted: mibPerSecond(c, runs[`${kind} encrypted`]![i]),
                        rclone: mibPerSecond(c, runs[`${kind} rclone`]![i]),
                    })),
                });
                if (kind === "minio" || !backends.includes("minio")) continue;
                for (const way of ways) {
                    againstMinio.push({
                        case: c.name,
                        backend: kind,
                        way,
                        put: speedup(runs, `${kind} ${way}`, `minio ${way}`, "putSeconds").median,
                        get: speedup(runs, `${kind} ${way}`, `minio ${way}`, "getSeconds").median,
                    });
                }
            }
        }

        // Memory while streaming, through the first backend's service: the peak after the largest case above,
        // and after 2 GiB each way.
        const child = streamThrough!.child;
        const afterCases = memoryMiB(child.pid);
        const streamSize = Number(process.env.BENCH_STREAM_GIB ?? 2) * 1024 ** 3;
        const streamStarted = process.hrtime.bigint();
        const streamClient = targets[`${backends[0]} encrypted`]!.s3;
        await streamClient.send(
            new PutObjectCommand({
                Bucket: "bench",
                Key: "stream",
                Body: generated(streamSize),
                ContentLength: streamSize,
            }),
        );
        const streamed = await streamClient.send(new GetObjectCommand({ Bucket: "bench", Key: "stream" }));
        const read = await drain(streamed.Body as Readable);
        if (read !== streamSize) throw new Error(`short stream: ${read}`);
        const memory = {
            backend: backends[0],
            streamedGiB: streamSize / 1024 ** 3,
            streamSeconds: Number(process.hrtime.bigint() - streamStarted) / 1e9,
            peakRssMiBAfterCases: afterCases.peak,
            peakRssMiBAfterStream: memoryMiB(child.pid).peak,
        };

        const out = writeBenchReport(
            "storage-s3-api",
            process.env.BENCH_PIN
                ? "client and the backends pinned to one core, the services and the relays to the other; loopback only"
                : "client, the services, the relays, the backends and OpenBao share this machine; loopback only",
            {
                pinned: Boolean(process.env.BENCH_PIN),
                relayAes: process.env.BENCH_RELAY_AES !== "0",
                backends,
                results,
                ratios,
                againstMinio,
                memory,
            },
        );
        console.table(
            results.map((r) => ({
                case: r.case,
                backend: r.backend,
                path: r.path,
                "PUT ops/s": r.putOpsPerSecond.toFixed(1),
                "GET ops/s": r.getOpsPerSecond.toFixed(1),
                "PUT MiB/s": r.putMiBPerSecond.toFixed(1),
                "GET MiB/s": r.getMiBPerSecond.toFixed(1),
                "service CPU-s/GiB": r.serviceCpuSecondsPerGiB?.toFixed(2) ?? "",
                "PUT CPU-s/GiB client+service+backend": Object.values(r.cpuSecondsPerGiB.put)
                    .map((v) => v.toFixed(1))
                    .join("+"),
                "GET CPU-s/GiB client+service+backend": Object.values(r.cpuSecondsPerGiB.get)
                    .map((v) => v.toFixed(1))
                    .join("+"),
                "cores busy PUT/GET": `${r.coresBusy.put.toFixed(2)}/${r.coresBusy.get.toFixed(2)}`,
            })),
        );
        console.table(
            ratios.map((r) => ({
                case: r.case,
                backend: r.backend,
                putRatio: r.putRatio.toFixed(2),
                getRatio: r.getRatio.toFixed(2),
                "relay PUT/GET": `${r.relayPutRatio.toFixed(2)}/${r.relayGetRatio.toFixed(2)}`,
                "rclone crypt PUT/GET": `${r.rclonePutRatio.toFixed(2)}/${r.rcloneGetRatio.toFixed(2)}`,
                "service vs rclone PUT/GET": `${r.againstRclone.put.toFixed(2)}/${r.againstRclone.get.toFixed(2)}`,
                "PUT rounds": r.putRatios.map((x) => x.toFixed(2)).join(" "),
                "GET rounds": r.getRatios.map((x) => x.toFixed(2)).join(" "),
            })),
        );
        if (againstMinio.length > 0) {
            console.table(
                againstMinio.map((r) => ({
                    case: r.case,
                    backend: r.backend,
                    path: r.way,
                    "PUT speed vs MinIO": r.put.toFixed(2),
                    "GET speed vs MinIO": r.get.toFixed(2),
                })),
            );
        }
        console.table([memory]);
        console.log(`written to ${out}`);
    } finally {
        for (const s of started.reverse()) await s.stop();
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
