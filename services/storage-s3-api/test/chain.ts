// The real chain the service tests run against: an S3 backend (MinIO or SeaweedFS) and OpenBao on loopback, and
// services in this process.
import * as assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import {
    createTransitKey,
    freePort,
    type OpenBaoServer,
    type S3Backend,
    type S3Server,
    s3Client,
    startOpenBaoDev,
    startS3Backend,
} from "@peoples-cloud/testkit";
import { createS3Server, type ServiceOptions } from "../src/server";
import { backendClient } from "../src/settings";
import { TransitClient } from "../src/vault";

export interface RunningService {
    server: Server;
    url: string;
    /** An AWS SDK client signed with a valid access key of this service. */
    s3: S3Client;
    accessKey: { id: string; secret: string };
    stop(): Promise<void>;
}

export interface Chain {
    backend: S3Server;
    bao: OpenBaoServer;
    transit: TransitClient;
    /** Straight to the backend, as it sees things. */
    direct: S3Client;
    startService(options?: Partial<ServiceOptions>): Promise<RunningService>;
    stop(): Promise<void>;
}

export async function startChain(kind: S3Backend): Promise<Chain> {
    const [backend, bao] = await Promise.all([startS3Backend(kind), startOpenBaoDev()]);
    await createTransitKey(bao, "storage-s3-api");
    const transit = new TransitClient({
        address: bao.url,
        token: () => bao.rootToken ?? "",
        keyName: "storage-s3-api",
    });
    const direct = s3Client(backend.url, backend.accessKeyId, backend.secretAccessKey);
    // The service's own client of the backend, as main.ts makes it; tests look at the backend through `direct`.
    const serviceBackend = backendClient(
        backend.url,
        "us-east-1",
        { accessKeyId: backend.accessKeyId, secretAccessKey: backend.secretAccessKey },
        { maxAttempts: 1 },
    );
    const services: RunningService[] = [];

    async function startService(options: Partial<ServiceOptions> = {}): Promise<RunningService> {
        const accessKey = { id: "garcia-family", secret: randomBytes(24).toString("base64url") };
        const server = createS3Server({
            region: "us-east-1",
            accessKeys: { [accessKey.id]: accessKey.secret },
            backend: serviceBackend,
            transit,
            etagKey: randomBytes(32),
            ...options,
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const stop = async () => {
            server.closeAllConnections();
            await new Promise((resolve) => server.close(resolve));
        };
        const service = { server, url, s3: s3Client(url, accessKey.id, accessKey.secret), accessKey, stop };
        services.push(service);
        return service;
    }

    return {
        backend,
        bao,
        transit,
        direct,
        startService,
        stop: async () => {
            await Promise.all(services.map((s) => s.stop()));
            serviceBackend.destroy();
            direct.destroy();
            await Promise.all([backend.stop(), bao.stop()]);
        },
    };
}

/** Every file the backend keeps, with its path: what a backend operator could read. */
export function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
    return fs
        .readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => {
            const file = path.join(e.parentPath, e.name);
            return { path: path.relative(dir, file), bytes: fs.readFileSync(file) };
        });
}

export interface ServiceProcess {
    child: ChildProcess;
    url: string;
    /** Liveness, readiness and metrics. */
    opsUrl: string;
    s3: S3Client;
    accessKey: { id: string; secret: string };
    /** Everything the process wrote to stdout and stderr. */
    output(): string;
    /** Its structured log: the JSON lines on stdout. */
    logs(): Record<string, unknown>[];
    /** SIGTERM, and the exit code once it exited. */
    stop(): Promise<number | null>;
}

interface Backend {
    url: string;
    accessKeyId: string;
    secretAccessKey: string;
}

/** The settings of the service and its jobs as their container gets them: secrets in files (mode 0600). */
function settingsFor(backend: Backend, vault: { url: string; rootToken?: string }) {
    const secrets = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-s3-api-"));
    const write = (name: string, value: string) => {
        fs.writeFileSync(path.join(secrets, name), value, { mode: 0o600 });
        return path.join(secrets, name);
    };
    const accessKey = { id: "garcia-family", secret: randomBytes(24).toString("base64url") };
    const env = {
        BACKEND_ENDPOINT: backend.url,
        VAULT_ADDR: vault.url,
        ACCESS_KEYS_FILE: write("access-keys.json", JSON.stringify({ [accessKey.id]: accessKey.secret })),
        BACKEND_CREDENTIALS_FILE: write(
            "backend.json",
            JSON.stringify({ accessKeyId: backend.accessKeyId, secretAccessKey: backend.secretAccessKey }),
        ),
        VAULT_TOKEN_FILE: write("vault-token", vault.rootToken ?? ""),
        ETAG_KEY_FILE: write("etag-key", randomBytes(32).toString("base64")),
    };
    return { env, accessKey, cleanup: () => fs.rmSync(secrets, { recursive: true, force: true }) };
}

/** A job of the service (`src/<script>`) run to its end: its exit code and JSON log lines. */
export async function runJob(script: string, backend: Backend, vault: { url: string; rootToken?: string }, env = {}) {
    const settings = settingsFor(backend, vault);
    const child = spawn(process.execPath, ["--require", "tsx/cjs", `src/${script}`], {
        cwd: path.resolve(__dirname, ".."),
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, ...settings.env, ...env },
    });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    settings.cleanup();
    const logs = stdout
        .split("\n")
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { code, logs };
}

/** The service as it runs in its container: `src/main.ts` in its own process, secrets in files. */
export async function spawnService(
    backend: Backend,
    vault: { url: string; rootToken?: string },
    options: { env?: Record<string, string>; execArgv?: string[] } = {},
): Promise<ServiceProcess> {
    const settings = settingsFor(backend, vault);
    const accessKey = settings.accessKey;
    const [port, opsPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [...(options.execArgv ?? []), "--require", "tsx/cjs", "src/main.ts"], {
        cwd: path.resolve(__dirname, ".."),
        stdio: ["ignore", "pipe", "pipe"],
        env: {
            ...process.env,
            ...settings.env,
            LISTEN: `127.0.0.1:${port}`,
            OPS_LISTEN: `127.0.0.1:${opsPort}`,
            ...options.env,
        },
    });
    let output = "";
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
        output += d.toString();
        stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const opsUrl = `http://127.0.0.1:${opsPort}`;
    for (let i = 0; ; i++) {
        if (child.exitCode !== null) throw new Error(`storage-s3-api exited with ${child.exitCode}: ${output}`);
        if (
            await fetch(`${opsUrl}/livez`).then(
                (r) => r.ok,
                () => false,
            )
        )
            break;
        if (i > 150) throw new Error("storage-s3-api did not start");
        await new Promise((r) => setTimeout(r, 100));
    }
    const url = `http://127.0.0.1:${port}`;
    return {
        child,
        url,
        opsUrl,
        s3: s3Client(url, accessKey.id, accessKey.secret),
        accessKey,
        output: () => output,
        logs: () =>
            stdout
                .split("\n")
                .filter((line) => line.trim())
                .map((line) => JSON.parse(line) as Record<string, unknown>),
        stop: async () => {
            if (child.exitCode === null) child.kill("SIGTERM");
            const code = await exited;
            settings.cleanup();
            return code;
        },
    };
}

/** Matches an SDK error by HTTP status and, when given, S3 error code (for assert.rejects). */
export const status = (code: number, name?: string) => (err: unknown) => {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(e.$metadata?.httpStatusCode, code);
    if (name !== undefined) assert.equal(e.name, name);
    return true;
};
