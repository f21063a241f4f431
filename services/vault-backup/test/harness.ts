// Real parts for the tests and the benchmark: OpenBao raft servers initialised with Shamir keys (as the
// platform initialises Vault), the backup job as its own process, and storage-kv-api as its own process.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    baoApi,
    freePort,
    type InitialisedVault,
    initialiseOpenBao,
    type RaftServer,
    startOpenBaoRaft,
    waitUntil,
} from "@peoples-cloud/testkit";
import type { BackupStore } from "../src/store";

export { type InitialisedVault, initialiseOpenBao as initialise, waitForActive } from "@peoples-cloud/testkit";

export async function startVault(nodeId = "vault-0"): Promise<InitialisedVault> {
    return initialiseOpenBao(await startOpenBaoRaft(nodeId));
}

/** Whether the server is unsealed and active and the KV secret `path` of mount `secret/` reads `value`. */
export async function readSecret(server: RaftServer, token: string, secretPath: string): Promise<unknown> {
    const res = await fetch(`${server.url}/v1/secret/data/${secretPath}`, { headers: { "X-Vault-Token": token } });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`read secret/${secretPath}: ${res.status}`);
    return ((await res.json()) as { data: { data: unknown } }).data.data;
}

export async function writeSecret(server: RaftServer, secretPath: string, data: object): Promise<void> {
    await baoApi(server, "POST", `secret/data/${secretPath}`, { data });
}

/** Secrets in files, mode 0600, as the job's pod gets them. */
export function secretsFolder() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-vault-backup-"));
    return {
        dir,
        write(name: string, value: string): string {
            fs.writeFileSync(path.join(dir, name), value, { mode: 0o600 });
            return path.join(dir, name);
        },
        remove: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
}

export interface JobRun {
    code: number | null;
    output: string;
    /** The JSON lines it printed. */
    logs: Record<string, unknown>[];
}

/** The CronJob's container: `src/main.ts` run to its end, as its own process, with its settings. */
export async function runBackupJob(settings: {
    vaultAddress: string;
    vaultToken: string;
    store: BackupStore;
    key: Buffer;
    keep?: number;
    /** Settings over the defaults: a Kubernetes login instead of the token file. */
    env?: Record<string, string>;
}): Promise<JobRun> {
    const secrets = secretsFolder();
    const env = {
        VAULT_ADDR: settings.vaultAddress,
        VAULT_TOKEN_FILE: secrets.write("vault-token", settings.vaultToken),
        BACKUP_ENDPOINT: settings.store.endpoint,
        BACKUP_BUCKET: settings.store.bucket,
        BACKUP_PREFIX: settings.store.prefix ?? "vault/",
        BACKUP_CREDENTIALS_FILE: secrets.write("backup-credentials.json", JSON.stringify(settings.store.credentials)),
        BACKUP_KEY_FILE: secrets.write("backup-key", settings.key.toString("base64")),
        BACKUP_KEEP: String(settings.keep ?? 14),
        ...settings.env,
    };
    try {
        const child = spawn(process.execPath, ["--require", "tsx/cjs", "src/main.ts"], {
            cwd: path.resolve(__dirname, ".."),
            stdio: ["ignore", "pipe", "pipe"],
            env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...env },
        });
        let output = "";
        let stdout = "";
        child.stdout.on("data", (d: Buffer) => ((output += d.toString()), (stdout += d.toString())));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
        const logs = stdout
            .split("\n")
            .filter((line) => line.trim())
            .map((line) => JSON.parse(line) as Record<string, unknown>);
        return { code, output, logs };
    } finally {
        secrets.remove();
    }
}

export interface KvProcess {
    url: string;
    token: string;
    output(): string;
    stop(): Promise<void>;
}

/** storage-kv-api in its own process, as its pod runs it, speaking S3 to storage-s3-api at `s3Url`. */
export async function spawnKv(
    s3Url: string,
    accessKey: { id: string; secret: string },
    secretKey: Buffer,
): Promise<KvProcess> {
    const secrets = secretsFolder();
    const token = randomBytes(24).toString("base64url");
    const port = await freePort();
    const dir = path.dirname(require.resolve("@peoples-cloud/storage-kv-api/package.json"));
    const child: ChildProcess = spawn(process.execPath, ["--require", "tsx/cjs", "src/main.ts"], {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
            PATH: process.env.PATH,
            HOME: os.tmpdir(),
            STORAGE_S3_ENDPOINT: s3Url,
            BUCKET: "kv-store",
            S3_CREDENTIALS_FILE: secrets.write(
                "s3.json",
                JSON.stringify({ accessKeyId: accessKey.id, secretAccessKey: accessKey.secret }),
            ),
            SECRET_KEY_FILE: secrets.write("secret", secretKey.toString("base64")),
            TOKENS_FILE: secrets.write("tokens.json", JSON.stringify({ [token]: "family-app" })),
            LISTEN: `127.0.0.1:${port}`,
            WRITE_DEADLINE_MS: "2000",
            SHUTDOWN_GRACE_SECONDS: "2",
        },
    });
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const stop = async () => {
        if (child.exitCode === null) {
            const exited = new Promise((r) => child.once("exit", r));
            child.kill("SIGTERM");
            await exited;
        }
        secrets.remove();
    };
    try {
        await waitUntil("storage-kv-api", async () => (await fetch(`${url}/readyz`)).status === 200, child, 60_000);
    } catch (err) {
        await stop();
        throw new Error(`${(err as Error).message}: ${output}`, { cause: err });
    }
    return { url, token, output: () => output, stop };
}
