// Real OpenBao, MinIO and SeaweedFS servers on loopback for tests, built by scripts/tools.sh, each in a temporary folder.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import {
    CreateBucketCommand,
    DeleteBucketCommand,
    DeleteObjectCommand,
    PutObjectCommand,
    type S3Client,
} from "@aws-sdk/client-s3";
import { s3Client } from "./s3";
import { toolsBinDir } from "./tools";

export interface RunningServer {
    url: string;
    dir: string;
    /** Everything the server printed, for assertions that nothing secret was logged. */
    log(): string;
    stop(): Promise<void>;
}

/** The lowest port the kernel gives outgoing connections (net.ipv4.ip_local_port_range). */
function ephemeralPortsFrom(): number {
    try {
        return Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    } catch {
        return 32768;
    }
}

/**
 * A loopback port free now, below the range the kernel takes outgoing connections' ports from: a port of that
 * range, free when chosen, can be taken by any client's connection before the server binds it (seen when a
 * benchmark's clients ran beside the tests).
 */
export async function freePort(): Promise<number> {
    const top = ephemeralPortsFrom();
    const bottom = Math.max(1024, top - 12_000);
    for (let tries = 0; ; tries++) {
        const port = bottom + Math.floor(Math.random() * (top - bottom));
        const free = await new Promise<boolean>((resolve) => {
            const server = net.createServer();
            server.once("error", () => resolve(false));
            server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
        });
        if (free) return port;
        if (tries === 100) throw new Error(`no free port between ${bottom} and ${top} after 100 tries`);
    }
}

/**
 * Waits until `ready` answers true, failing if `child` exits first (with the end of its `log`, when given) or
 * the time runs out.
 */
export async function waitUntil(
    what: string,
    ready: () => Promise<boolean>,
    child: ChildProcess,
    timeoutMs = 30_000,
    log?: () => string,
) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null) {
            const last = log?.().trim().split("\n").slice(-5).join("\n") ?? "";
            throw new Error(`${what} exited with code ${child.exitCode} before it was ready${last && `:\n${last}`}`);
        }
        if (await ready().catch(() => false)) return;
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${what} was not ready within ${timeoutMs} ms`);
}

type ServerProcess = ReturnType<typeof startProcess>;

function startProcess(name: string, binary: string, args: string[], env: Record<string, string>, existingDir?: string) {
    const dir = existingDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `peoples-cloud-${name}-`));
    let output = "";
    const child = spawn(
        binary,
        args.map((a) => a.replaceAll("{dir}", dir)),
        {
            env: { ...process.env, ...env },
            stdio: ["ignore", "pipe", "pipe"],
        },
    );
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    /** SIGTERM lets the server stop as it chooses (SeaweedFS finishes requests in flight); SIGKILL is a crash. */
    const halt = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM") => {
        if (child.exitCode === null) {
            const exited = new Promise((r) => child.once("exit", r));
            child.kill(signal);
            await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
            if (child.exitCode === null) child.kill("SIGKILL");
        }
    };
    const stop = async () => {
        await halt();
        fs.rmSync(dir, { recursive: true, force: true });
    };
    return { child, dir, log: () => output, stop, halt };
}

export interface OpenBaoServer extends RunningServer {
    /** Root token of a dev server; undefined for a server that still has to be initialised. */
    rootToken?: string;
}

/** An OpenBao dev server (in memory, unsealed, root token known). */
export async function startOpenBaoDev(): Promise<OpenBaoServer> {
    const port = await freePort();
    const rootToken = randomBytes(18).toString("base64url");
    const bao = path.join(toolsBinDir("servers"), "bao");
    const p = startProcess("openbao", bao, ["server", "-dev", `-dev-listen-address=127.0.0.1:${port}`], {
        BAO_DEV_ROOT_TOKEN_ID: rootToken,
        HOME: os.tmpdir(),
    });
    const url = `http://127.0.0.1:${port}`;
    await waitUntil("openbao", async () => (await fetch(`${url}/v1/sys/health`)).status === 200, p.child);
    return { url, dir: p.dir, log: p.log, stop: p.stop, rootToken };
}

/**
 * One server across restarts, as a pod that restarts is: `halt` stops it and keeps its data, `restart` starts
 * it again on the same ports and data, `stop` ends it and removes its folder; its log spans every run.
 */
async function restartable(run: () => Promise<ServerProcess>) {
    let current = await run();
    let earlierLogs = "";
    return {
        /** The server's current process, for benchmarks that read its CPU time. */
        get pid() {
            return current.child.pid;
        },
        log: () => earlierLogs + current.log(),
        halt: (signal?: "SIGTERM" | "SIGKILL") => current.halt(signal),
        restart: async () => {
            await current.halt();
            earlierLogs += current.log();
            current = await run();
        },
        stop: () => current.stop(),
    };
}

export interface RaftServer extends OpenBaoServer {
    nodeId: string;
    /** Stops the server and keeps its raft data, as a pod that restarts does. */
    halt(): Promise<void>;
    /** Starts it again on the same port and data: it comes back sealed. */
    restart(): Promise<void>;
}

/**
 * An uninitialised OpenBao server with raft storage in a temporary folder, as a fresh Vault pod is. It listens
 * on loopback, or on `host` (the test hosts' bridge, for a CLI that reaches it from a test host).
 */
export async function startOpenBaoRaft(nodeId = "node-1", host = "127.0.0.1"): Promise<RaftServer> {
    const port = await freePort();
    const clusterPort = await freePort();
    const bao = path.join(toolsBinDir("servers"), "bao");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-openbao-raft-"));
    const url = `http://${host}:${port}`;
    fs.writeFileSync(
        path.join(dir, "config.hcl"),
        [
            `storage "raft" {\n  path = "${dir}"\n  node_id = "${nodeId}"\n}`,
            `listener "tcp" {\n  address = "${host}:${port}"\n  cluster_address = "${host}:${clusterPort}"\n  tls_disable = true\n}`,
            `api_addr = "${url}"`,
            `cluster_addr = "http://${host}:${clusterPort}"`,
            `disable_mlock = true`,
            // Vault enables audit devices through its API, as the configuration does; OpenBao only with this.
            `unsafe_allow_api_audit_creation = true`,
        ].join("\n"),
    );
    const server = await restartable(async () => {
        const p = startProcess(
            "openbao-raft",
            bao,
            ["server", `-config=${dir}/config.hcl`],
            { HOME: os.tmpdir() },
            dir,
        );
        // Sealed and uninitialised answers 501; anything but a refused connection means it listens.
        await waitUntil("openbao", async () => (await fetch(`${url}/v1/sys/health`)).status > 0, p.child);
        return p;
    });
    return Object.assign(server, { url, dir, nodeId });
}

export interface InitialisedVault {
    server: RaftServer;
    rootToken: string;
    /** Every unseal key share, base64, as the stack's state keeps them. */
    unsealKeys: string[];
}

/** Waits until the server is unsealed and active (sys/health 200); at most 30 s. */
export async function waitForActive(server: RaftServer): Promise<void> {
    for (
        let i = 0;
        (await fetch(`${server.url}/v1/sys/health`).then(
            (r) => r.status,
            () => 0,
        )) !== 200;
        i++
    ) {
        if (i > 150) throw new Error(`OpenBao at ${server.url} did not become active`);
        await new Promise((r) => setTimeout(r, 200));
    }
}

/** Initialises a fresh raft server with `shares` key shares (threshold `threshold`), unseals it, waits until active. */
export async function initialiseOpenBao(server: RaftServer, shares = 3, threshold = 2): Promise<InitialisedVault> {
    const res = await fetch(`${server.url}/v1/sys/init`, {
        method: "POST",
        body: JSON.stringify({ secret_shares: shares, secret_threshold: threshold }),
    });
    if (!res.ok) throw new Error(`sys/init: ${res.status} ${await res.text()}`);
    const init = (await res.json()) as { keys_base64: string[]; root_token: string };
    for (const key of init.keys_base64.slice(0, threshold)) {
        await fetch(`${server.url}/v1/sys/unseal`, { method: "POST", body: JSON.stringify({ key }) });
    }
    await waitForActive(server);
    server.rootToken = init.root_token;
    return { server, rootToken: init.root_token, unsealKeys: init.keys_base64 };
}

/** The S3 servers the tests run: MinIO (archived, the first backend) and SeaweedFS (the in-cluster backend). */
export const S3_BACKENDS = ["seaweedfs", "minio"] as const;
export type S3Backend = (typeof S3_BACKENDS)[number];

/**
 * The S3 backends the services' suites run on, in this order: every one, or those `PEOPLES_CLOUD_S3_BACKENDS`
 * names (comma-separated), e.g. `PEOPLES_CLOUD_S3_BACKENDS=seaweedfs npm run test:services`.
 */
export function s3Backends(): S3Backend[] {
    const asked = process.env.PEOPLES_CLOUD_S3_BACKENDS;
    if (!asked) return [...S3_BACKENDS];
    const names = asked.split(",").map((n) => n.trim());
    const unknown = names.filter((n) => !(S3_BACKENDS as readonly string[]).includes(n));
    if (unknown.length > 0) {
        throw new Error(`PEOPLES_CLOUD_S3_BACKENDS names ${unknown.join(", ")}; known: ${S3_BACKENDS.join(", ")}`);
    }
    return names as S3Backend[];
}

/** A mocha suite run once on each backend of `s3Backends()`, named with the backend. */
export function describeEachS3Backend(title: string, suite: (this: Mocha.Suite, backend: S3Backend) => void): void {
    for (const backend of s3Backends()) {
        describe(`${title} on ${backend}`, function () {
            suite.call(this, backend);
        });
    }
}

/** An S3 server on loopback with one identity whose credentials are generated for this run. */
export interface S3Server extends RunningServer {
    backend: S3Backend;
    /** The server's current process, for benchmarks that read its CPU time. */
    readonly pid: number | undefined;
    accessKeyId: string;
    secretAccessKey: string;
    /** Stops the server and keeps its data: SIGTERM by default, SIGKILL for a crash. */
    halt(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
    /** Starts it again on the same port, credentials and data after `halt()`. */
    restart(): Promise<void>;
}

export function startS3Backend(backend: S3Backend): Promise<S3Server> {
    return backend === "minio" ? startMinio() : startSeaweedfs();
}

const credentials = () => ({
    accessKeyId: `test${randomBytes(6).toString("hex")}`,
    secretAccessKey: randomBytes(24).toString("base64url"),
});

export async function startMinio(): Promise<S3Server> {
    const { accessKeyId, secretAccessKey } = credentials();
    const [port, consolePort] = [await freePort(), await freePort()];
    const minio = path.join(toolsBinDir("servers"), "minio");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-minio-"));
    const url = `http://127.0.0.1:${port}`;
    const server = await restartable(async () => {
        const p = startProcess(
            "minio",
            minio,
            [
                "server",
                "--quiet",
                "--address",
                `127.0.0.1:${port}`,
                "--console-address",
                `127.0.0.1:${consolePort}`,
                "{dir}",
            ],
            {
                MINIO_ROOT_USER: accessKeyId,
                MINIO_ROOT_PASSWORD: secretAccessKey,
                MINIO_UPDATE: "off",
                MINIO_BROWSER: "off",
                HOME: os.tmpdir(),
            },
            dir,
        );
        await waitUntil("minio", async () => (await fetch(`${url}/minio/health/ready`)).status === 200, p.child);
        return p;
    });
    return Object.assign(server, { backend: "minio" as const, url, dir, accessKeyId, secretAccessKey });
}

/**
 * Whether SeaweedFS takes a conditional write: it holds a lock per object for those, and its lock ring forms
 * some seconds after its S3 gateway first answers (until then such a write waits, then gets 503). Tried on a
 * bucket of its own, removed again, so the tests' listings never see it.
 */
async function conditionalWriteGoesThrough(client: S3Client): Promise<boolean> {
    const Bucket = "peoples-cloud-readiness";
    await client.send(new CreateBucketCommand({ Bucket })).catch((err: Error) => {
        if (err.name !== "BucketAlreadyOwnedByYou") throw err;
    });
    const Key = randomBytes(8).toString("hex");
    await client.send(new PutObjectCommand({ Bucket, Key, Body: "", IfNoneMatch: "*" }));
    await client.send(new DeleteObjectCommand({ Bucket, Key }));
    await client.send(new DeleteBucketCommand({ Bucket }));
    return true;
}

/**
 * SeaweedFS as one process (`weed server`: master, volume server, filer and S3 gateway) on loopback, its data
 * and the S3 identity file (mode 0600) in a temporary folder. Every port is chosen here, so nothing listens on
 * SeaweedFS's fixed defaults; telemetry, the Iceberg and Lance endpoints are off.
 */
export async function startSeaweedfs(): Promise<S3Server> {
    const { accessKeyId, secretAccessKey } = credentials();
    const weed = path.join(toolsBinDir("servers"), "weed");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-seaweedfs-"));
    fs.mkdirSync(path.join(dir, "data"));
    const identities = {
        identities: [
            { name: "test", credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ["Admin"] },
        ],
    };
    fs.writeFileSync(path.join(dir, "s3.json"), JSON.stringify(identities), { mode: 0o600 });
    // Each part's HTTP and gRPC ports (SeaweedFS would take the HTTP port + 10000 for gRPC).
    const parts: Record<string, { http: number; grpc: number }> = {};
    for (const name of ["master", "volume", "filer", "s3"])
        parts[name] = { http: await freePort(), grpc: await freePort() };
    const url = `http://127.0.0.1:${parts.s3.http}`;
    const client = s3Client(url, accessKeyId, secretAccessKey);
    const server = await restartable(async () => {
        const p = startProcess(
            "seaweedfs",
            weed,
            [
                "server",
                "-ip=127.0.0.1",
                "-dir={dir}/data",
                ...Object.entries(parts).flatMap(([name, part]) => [
                    `-${name}.port=${part.http}`,
                    `-${name}.port.grpc=${part.grpc}`,
                ]),
                "-s3",
                "-s3.config={dir}/s3.json",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-s3.localSocket={dir}/s3.sock",
                "-filer.localSocket={dir}/filer.sock",
                "-master.peers=none",
                "-master.telemetry=false",
                // Small volumes, as many as the disk holds: every bucket is a collection with volumes of its own.
                "-master.volumeSizeLimitMB=64",
                "-volume.max=0",
                "-volume.preStopSeconds=0",
            ],
            // One volume at a time for a new collection (SeaweedFS grows seven), as `weed mini` does.
            { HOME: dir, WEED_MASTER_VOLUME_GROWTH_COPY_1: "1" },
            dir,
        );
        await waitUntil("seaweedfs", () => conditionalWriteGoesThrough(client), p.child, 120_000, p.log);
        return p;
    });
    const stopServer = server.stop;
    const stop = async () => {
        client.destroy();
        await stopServer();
        // SeaweedFS puts each server's gRPC socket in /tmp by a fixed name.
        for (const [name, part] of Object.entries(parts)) {
            fs.rmSync(`/tmp/seaweedfs-${name}-grpc-${part.grpc}.sock`, { force: true });
        }
    };
    return Object.assign(server, { backend: "seaweedfs" as const, url, dir, accessKeyId, secretAccessKey, stop });
}

/** A request to an OpenBao server's HTTP API with its root token; fails on any non-2xx answer. */
export async function baoApi(bao: OpenBaoServer, method: string, apiPath: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${bao.url}/v1/${apiPath}`, {
        method,
        headers: { "X-Vault-Token": bao.rootToken ?? "" },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${apiPath}: ${res.status} ${await res.text()}`);
    return res.status === 204 ? {} : res.json();
}

/** Mounts transit and creates the key storage-s3-api expects (AES-256-GCM, derived per object). */
export async function createTransitKey(bao: OpenBaoServer, name: string): Promise<void> {
    await baoApi(bao, "POST", "sys/mounts/transit", { type: "transit" });
    await baoApi(bao, "POST", `transit/keys/${name}`, { type: "aes256-gcm96", derived: true });
}
