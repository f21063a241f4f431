// storage-s3-api against direct MinIO, side by side in one run: PUT and GET of 4 KiB, 1 MiB and 64 MiB
// objects in alternating rounds, with the CPU each process spent (client, service, MinIO) and so how many of
// the machine's cores each path kept busy, then the service's peak memory while streaming 2 GiB each way.
// A third path goes through relay.ts, which does only the service's AES work on the bytes: what a Node
// process doing that work in the path reaches without HTTP, signatures or the SDK. BENCH_PIN=1 pins the
// service and the relay to one core, the client and MinIO to the other. Writes the figures and the machine's
// conditions to .bench/storage-s3-api-<time>.json (ignored by git) and prints them.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import { Readable } from "node:stream";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import {
    createTransitKey,
    freePort,
    s3Client,
    startMinio,
    startOpenBaoDev,
    waitUntil,
    writeBenchReport,
} from "@peoples-cloud/testkit";
import { type ServiceProcess, spawnService } from "../test/chain";

const cases = [
    { name: "4 KiB", size: 4 * 1024, count: 300 },
    { name: "1 MiB", size: 1024 * 1024, count: 40 },
    { name: "64 MiB", size: 64 * 1024 * 1024, count: 3 },
];

const paths = ["direct", "relay", "encrypted"] as const;
type Path = (typeof paths)[number];

interface Result {
    case: string;
    path: Path;
    objects: number;
    putOpsPerSecond: number;
    getOpsPerSecond: number;
    putMiBPerSecond: number;
    getMiBPerSecond: number;
    serviceCpuSecondsPerGiB?: number;
    /** CPU seconds per GiB moved, per process and phase; "service" is the relay on the relay path. */
    cpuSecondsPerGiB: Record<"put" | "get", { client: number; service: number; minio: number }>;
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

/** CPU seconds so far of this process (the client), the service (or relay) and MinIO. */
function cpuNow(servicePid: number | undefined, minioPid: number | undefined) {
    const own = process.cpuUsage();
    return { client: (own.user + own.system) / 1e6, service: cpuSeconds(servicePid), minio: cpuSeconds(minioPid) };
}
type CpuSample = ReturnType<typeof cpuNow>;
const cpuSince = (before: CpuSample, after: CpuSample): CpuSample => ({
    client: after.client - before.client,
    service: after.service - before.service,
    minio: after.minio - before.minio,
});
const totalCpu = (c: CpuSample) => c.client + c.service + c.minio;

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
 * the client about 3 CPU-s more per GiB, and on cores it shares with the service and MinIO that would
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
    minioPid: number | undefined,
): Promise<Phase> {
    const putCpuBefore = cpuNow(servicePid, minioPid);
    let started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
        await s3.send(new PutObjectCommand({ Bucket: "bench", Key: `${prefix}/${i}`, Body: body }));
    }
    const putSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const putCpu = cpuSince(putCpuBefore, cpuNow(servicePid, minioPid));
    const getCpuBefore = cpuNow(servicePid, minioPid);
    started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
        const got = await s3.send(new GetObjectCommand({ Bucket: "bench", Key: `${prefix}/${i}` }));
        const read = await drain(got.Body as Readable);
        if (read !== body.length) throw new Error(`short read: ${read}`);
    }
    const getSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { putSeconds, getSeconds, putCpu, getCpu: cpuSince(getCpuBefore, cpuNow(servicePid, minioPid)) };
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
function summarise(c: (typeof cases)[number], path_: Path, runs: Phase[]): Result {
    const objects = c.count * runs.length;
    const mib = (c.size * objects) / 1024 ** 2;
    const sum = (pick: (p: Phase) => number) => runs.reduce((total, p) => total + pick(p), 0);
    const cpu = (phase: "putCpu" | "getCpu"): CpuSample => ({
        client: sum((p) => p[phase].client),
        service: sum((p) => p[phase].service),
        minio: sum((p) => p[phase].minio),
    });
    const perGiB = (sample: CpuSample) => ({
        client: (sample.client / mib) * 1024,
        service: (sample.service / mib) * 1024,
        minio: (sample.minio / mib) * 1024,
    });
    const [putSeconds, getSeconds] = [sum((p) => p.putSeconds), sum((p) => p.getSeconds)];
    const [putCpu, getCpu] = [cpu("putCpu"), cpu("getCpu")];
    return {
        case: c.name,
        path: path_,
        objects,
        putOpsPerSecond: objects / putSeconds,
        getOpsPerSecond: objects / getSeconds,
        putMiBPerSecond: mib / putSeconds,
        getMiBPerSecond: mib / getSeconds,
        serviceCpuSecondsPerGiB:
            path_ === "encrypted" ? ((putCpu.service + getCpu.service) / (2 * mib)) * 1024 : undefined,
        cpuSecondsPerGiB: { put: perGiB(putCpu), get: perGiB(getCpu) },
        coresBusy: { put: totalCpu(putCpu) / putSeconds, get: totalCpu(getCpu) / getSeconds },
    };
}

async function main(): Promise<void> {
    const [minio, bao] = await Promise.all([startMinio(), startOpenBaoDev()]);
    let service: ServiceProcess | undefined;
    let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
    try {
        await createTransitKey(bao, "storage-s3-api");
        // BENCH_CPU_PROF=<dir> writes a CPU profile of the service, to see where its time goes.
        service = await spawnService(minio, bao, {
            execArgv: process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [],
        });
        const child = service.child;
        relay = await startRelay(new URL(minio.url).host);
        if (process.env.BENCH_PIN) {
            for (const pid of [process.pid, minio.pid]) pin("0", pid);
            for (const pid of [child.pid, relay.pid]) pin("1", pid);
        }
        const clients: Record<Path, { s3: S3Client; pid: number | undefined }> = {
            direct: { s3: client(minio.url, minio.accessKeyId, minio.secretAccessKey), pid: undefined },
            relay: { s3: client(relay.url, minio.accessKeyId, minio.secretAccessKey), pid: relay.pid },
            encrypted: { s3: client(service.url, service.accessKey.id, service.accessKey.secret), pid: child.pid },
        };
        await clients.direct.s3.send(new CreateBucketCommand({ Bucket: "bench" }));

        // Each case runs in rounds that alternate the paths, after one untimed warm-up round, so a change in
        // the machine's speed during the run (it is shared) shows in all paths alike; each ratio is the
        // median of the rounds' ratios.
        const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
        const results: Result[] = [];
        const ratios: {
            case: string;
            /** Encrypted over direct. */
            putRatio: number;
            getRatio: number;
            putRatios: number[];
            getRatios: number[];
            /** Relay over direct. */
            relayPutRatio: number;
            relayGetRatio: number;
            /** Each timed round's MiB/s, to tell a slow direct round from a fast encrypted one. */
            roundsMiBPerSecond: Record<Path, { put: number; get: number }>[];
        }[] = [];
        for (const c of cases) {
            const body = randomBytes(c.size);
            const runs: Record<Path, Phase[]> = { direct: [], relay: [], encrypted: [] };
            for (let round = 0; round <= rounds; round++) {
                for (const path_ of paths) {
                    const { s3, pid } = clients[path_];
                    const phase = await measure(s3, `${path_}/${c.name}`, body, c.count, pid, minio.pid);
                    if (round > 0) runs[path_].push(phase);
                }
            }
            for (const path_ of paths) results.push(summarise(c, path_, runs[path_]));
            const over = (path_: Path, phase: "putSeconds" | "getSeconds") =>
                runs[path_].map((p, i) => runs.direct[i][phase] / p[phase]);
            const [putRatios, getRatios] = [over("encrypted", "putSeconds"), over("encrypted", "getSeconds")];
            ratios.push({
                case: c.name,
                putRatio: median(putRatios),
                getRatio: median(getRatios),
                putRatios,
                getRatios,
                relayPutRatio: median(over("relay", "putSeconds")),
                relayGetRatio: median(over("relay", "getSeconds")),
                roundsMiBPerSecond: runs.direct.map((d, i) => ({
                    direct: mibPerSecond(c, d),
                    relay: mibPerSecond(c, runs.relay[i]),
                    encrypted: mibPerSecond(c, runs.encrypted[i]),
                })),
            });
        }

        // Memory while streaming: the peak after the largest case above, and after 2 GiB each way.
        const afterCases = memoryMiB(child.pid);
        const streamSize = Number(process.env.BENCH_STREAM_GIB ?? 2) * 1024 ** 3;
        const streamStarted = process.hrtime.bigint();
        await clients.encrypted.s3.send(
            new PutObjectCommand({
                Bucket: "bench",
                Key: "stream",
                Body: generated(streamSize),
                ContentLength: streamSize,
            }),
        );
        const streamed = await clients.encrypted.s3.send(new GetObjectCommand({ Bucket: "bench", Key: "stream" }));
        const read = await drain(streamed.Body as Readable);
        if (read !== streamSize) throw new Error(`short stream: ${read}`);
        const memory = {
            streamedGiB: streamSize / 1024 ** 3,
            streamSeconds: Number(process.hrtime.bigint() - streamStarted) / 1e9,
            peakRssMiBAfterCases: afterCases.peak,
            peakRssMiBAfterStream: memoryMiB(child.pid).peak,
        };

        const out = writeBenchReport(
            "storage-s3-api",
            process.env.BENCH_PIN
                ? "client and MinIO pinned to one core, storage-s3-api and the relay to the other; loopback only"
                : "client, storage-s3-api, the relay, MinIO and OpenBao share this machine; loopback only",
            {
                pinned: Boolean(process.env.BENCH_PIN),
                relayAes: process.env.BENCH_RELAY_AES !== "0",
                results,
                ratios,
                memory,
            },
        );
        console.table(
            results.map((r) => ({
                case: r.case,
                path: r.path,
                "PUT ops/s": r.putOpsPerSecond.toFixed(1),
                "GET ops/s": r.getOpsPerSecond.toFixed(1),
                "PUT MiB/s": r.putMiBPerSecond.toFixed(1),
                "GET MiB/s": r.getMiBPerSecond.toFixed(1),
                "service CPU-s/GiB": r.serviceCpuSecondsPerGiB?.toFixed(2) ?? "",
                "PUT CPU-s/GiB client+service+minio": Object.values(r.cpuSecondsPerGiB.put)
                    .map((v) => v.toFixed(1))
                    .join("+"),
                "GET CPU-s/GiB client+service+minio": Object.values(r.cpuSecondsPerGiB.get)
                    .map((v) => v.toFixed(1))
                    .join("+"),
                "cores busy PUT/GET": `${r.coresBusy.put.toFixed(2)}/${r.coresBusy.get.toFixed(2)}`,
            })),
        );
        console.table(
            ratios.map((r) => ({
                case: r.case,
                putRatio: r.putRatio.toFixed(2),
                getRatio: r.getRatio.toFixed(2),
                "relay PUT/GET": `${r.relayPutRatio.toFixed(2)}/${r.relayGetRatio.toFixed(2)}`,
                "PUT rounds": r.putRatios.map((x) => x.toFixed(2)).join(" "),
                "GET rounds": r.getRatios.map((x) => x.toFixed(2)).join(" "),
            })),
        );
        console.table([memory]);
        console.log(`written to ${out}`);
    } finally {
        relay?.stop();
        await service?.stop();
        await Promise.all([minio.stop(), bao.stop()]);
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
