// storage-s3-api against direct MinIO, side by side in one run: PUT and GET of 4 KiB, 1 MiB and 16 MiB
// objects, with the CPU each process spent. Writes the figures and the machine's conditions to
// .bench/storage-s3-api-<time>.json in the repository (ignored by git) and prints them.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { s3Client } from "../../../tests/helpers/s3";
import { createTransitKey, freePort, startMinio, startOpenBaoDev } from "../../../tests/helpers/servers";

const repo = path.resolve(__dirname, "..", "..", "..");
const service = path.resolve(__dirname, "..");

const cases = [
    { name: "4 KiB", size: 4 * 1024, count: 300 },
    { name: "1 MiB", size: 1024 * 1024, count: 40 },
    { name: "16 MiB", size: 16 * 1024 * 1024, count: 6 },
];

interface Result {
    case: string;
    path: "direct" | "encrypted";
    objects: number;
    putOpsPerSecond: number;
    getOpsPerSecond: number;
    putMiBPerSecond: number;
    getMiBPerSecond: number;
    serviceCpuSecondsPerGiB?: number;
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

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
    for (let i = 0; i < 100; i++) {
        if (child.exitCode !== null) throw new Error(`storage-s3-api exited with ${child.exitCode}`);
        const ok = await fetch(`http://127.0.0.1:${port}/`).then(
            () => true,
            () => false,
        );
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("storage-s3-api did not start");
}

async function main(): Promise<void> {
    const [minio, bao] = await Promise.all([startMinio(), startOpenBaoDev()]);
    const secrets = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-bench-"));
    let child: ChildProcess | undefined;
    try {
        await createTransitKey(bao, "storage-s3-api");

        const access = { id: "bench", secret: randomBytes(24).toString("base64url") };
        const write = (name: string, value: string) => {
            fs.writeFileSync(path.join(secrets, name), value, { mode: 0o600 });
            return path.join(secrets, name);
        };
        const port = await freePort();
        // BENCH_CPU_PROF=<dir> writes a CPU profile of the service, to see where its time goes.
        const profile = process.env.BENCH_CPU_PROF
            ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
            : [];
        child = spawn(process.execPath, [...profile, "--require", "tsx/cjs", "src/main.ts"], {
            cwd: service,
            stdio: ["ignore", "ignore", "inherit"],
            env: {
                ...process.env,
                LISTEN: `127.0.0.1:${port}`,
                BACKEND_ENDPOINT: minio.url,
                VAULT_ADDR: bao.url,
                ACCESS_KEYS_FILE: write("access-keys.json", JSON.stringify({ [access.id]: access.secret })),
                BACKEND_CREDENTIALS_FILE: write(
                    "backend.json",
                    JSON.stringify({ accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey }),
                ),
                VAULT_TOKEN_FILE: write("vault-token", bao.rootToken ?? ""),
                ETAG_KEY_FILE: write("etag-key", randomBytes(32).toString("base64")),
            },
        });
        await waitForPort(port, child);

        const encrypted = client(`http://127.0.0.1:${port}`, access.id, access.secret);
        const direct = client(minio.url, minio.accessKeyId, minio.secretAccessKey);
        await direct.send(new CreateBucketCommand({ Bucket: "bench" }));

        const results: Result[] = [];
        for (const c of cases) {
            const body = randomBytes(c.size);
            for (const [path_, s3] of [
                ["direct", direct],
                ["encrypted", encrypted],
            ] as const) {
                const cpuBefore = cpuSeconds(child.pid);
                let started = process.hrtime.bigint();
                for (let i = 0; i < c.count; i++) {
                    await s3.send(
                        new PutObjectCommand({ Bucket: "bench", Key: `${path_}/${c.name}/${i}`, Body: body }),
                    );
                }
                const putSeconds = Number(process.hrtime.bigint() - started) / 1e9;
                started = process.hrtime.bigint();
                for (let i = 0; i < c.count; i++) {
                    const got = await s3.send(
                        new GetObjectCommand({ Bucket: "bench", Key: `${path_}/${c.name}/${i}` }),
                    );
                    const bytes = await got.Body!.transformToByteArray();
                    if (bytes.length !== c.size) throw new Error(`short read: ${bytes.length}`);
                }
                const getSeconds = Number(process.hrtime.bigint() - started) / 1e9;
                const mib = (c.size * c.count) / 1024 ** 2;
                results.push({
                    case: c.name,
                    path: path_,
                    objects: c.count,
                    putOpsPerSecond: c.count / putSeconds,
                    getOpsPerSecond: c.count / getSeconds,
                    putMiBPerSecond: mib / putSeconds,
                    getMiBPerSecond: mib / getSeconds,
                    serviceCpuSecondsPerGiB:
                        path_ === "encrypted" ? ((cpuSeconds(child.pid) - cpuBefore) / (2 * mib)) * 1024 : undefined,
                });
            }
        }

        const ratios = cases.map((c) => {
            const d = results.find((r) => r.case === c.name && r.path === "direct")!;
            const e = results.find((r) => r.case === c.name && r.path === "encrypted")!;
            return {
                case: c.name,
                putRatio: e.putOpsPerSecond / d.putOpsPerSecond,
                getRatio: e.getOpsPerSecond / d.getOpsPerSecond,
            };
        });
        const report = {
            when: new Date().toISOString(),
            machine: {
                cpus: os.cpus().length,
                model: os.cpus()[0]?.model,
                loadAverage: os.loadavg(),
                totalMemoryGiB: os.totalmem() / 1024 ** 3,
                node: process.version,
                note: "client, storage-s3-api, MinIO and OpenBao share this machine; loopback only",
            },
            results,
            ratios,
        };
        const out = path.join(repo, ".bench", `storage-s3-api-${report.when.replace(/[:.]/g, "-")}.json`);
        fs.mkdirSync(path.dirname(out), { recursive: true });
        fs.writeFileSync(out, JSON.stringify(report, null, 2));
        console.table(
            results.map((r) => ({
                case: r.case,
                path: r.path,
                "PUT ops/s": r.putOpsPerSecond.toFixed(1),
                "GET ops/s": r.getOpsPerSecond.toFixed(1),
                "PUT MiB/s": r.putMiBPerSecond.toFixed(1),
                "GET MiB/s": r.getMiBPerSecond.toFixed(1),
                "service CPU-s/GiB": r.serviceCpuSecondsPerGiB?.toFixed(2) ?? "",
            })),
        );
        console.table(ratios.map((r) => ({ ...r, putRatio: r.putRatio.toFixed(2), getRatio: r.getRatio.toFixed(2) })));
        console.log(`written to ${out}`);
    } finally {
        if (child && child.exitCode === null) {
            const exited = new Promise((resolve) => child?.once("exit", resolve));
            child.kill("SIGTERM");
            await exited;
        }
        fs.rmSync(secrets, { recursive: true, force: true });
        await Promise.all([minio.stop(), bao.stop()]);
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
