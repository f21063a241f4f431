// Real OpenBao and MinIO servers on loopback for tests, built by scripts/tools.sh, each in a temporary folder.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { toolsBinDir } from "./tools";

export interface RunningServer {
    url: string;
    dir: string;
    /** Everything the server printed, for assertions that nothing secret was logged. */
    log(): string;
    stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

/** Waits until `ready` answers true, failing if `child` exits first or the time runs out. */
export async function waitUntil(what: string, ready: () => Promise<boolean>, child: ChildProcess, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before it was ready`);
        if (await ready().catch(() => false)) return;
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${what} was not ready within ${timeoutMs} ms`);
}

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
    const halt = async () => {
        if (child.exitCode === null) {
            const exited = new Promise((r) => child.once("exit", r));
            child.kill("SIGTERM");
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
    const run = async () => {
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
    };
    let current = await run();
    let earlierLogs = "";
    return {
        url,
        dir,
        nodeId,
        log: () => earlierLogs + current.log(),
        halt: () => current.halt(),
        restart: async () => {
            await current.halt();
            earlierLogs += current.log();
            current = await run();
        },
        stop: () => current.stop(),
    };
}

export interface MinioServer extends RunningServer {
    /** The server's process, for benchmarks that read its CPU time. */
    pid?: number;
    accessKeyId: string;
    secretAccessKey: string;
    /** Stops the server and keeps its data, for `restartMinio`. */
    halt(): Promise<void>;
}

export async function startMinio(): Promise<MinioServer> {
    return runMinio(await freePort(), `test${randomBytes(6).toString("hex")}`, randomBytes(24).toString("base64url"));
}

/** The same server again, on its port and data, after `halt()`. */
export async function restartMinio(halted: MinioServer): Promise<MinioServer> {
    const port = Number(new URL(halted.url).port);
    return runMinio(port, halted.accessKeyId, halted.secretAccessKey, halted.dir);
}

async function runMinio(port: number, accessKeyId: string, secretAccessKey: string, dir?: string) {
    const consolePort = await freePort();
    const minio = path.join(toolsBinDir("servers"), "minio");
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
    const url = `http://127.0.0.1:${port}`;
    await waitUntil("minio", async () => (await fetch(`${url}/minio/health/ready`)).status === 200, p.child);
    return { url, dir: p.dir, pid: p.child.pid, log: p.log, stop: p.stop, halt: p.halt, accessKeyId, secretAccessKey };
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
