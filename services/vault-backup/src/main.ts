// The CronJob's entry point: one backup, settings from the environment, secrets from files. It prints JSON
// lines (never a token, a credential or the key) and exits 0 only when the backup is in the bucket and the
// last-success marker rewritten; any failure exits 1 with the step that failed, so the Job fails.
import * as fs from "node:fs";
import { BackupError, backupVault, step } from "./backup";
import { kubernetesLogin } from "./vault";

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

class SettingError extends Error {}

function setting(name: string, fallback?: string): string {
    const value = process.env[name] ?? fallback;
    if (value === undefined || value === "") throw new SettingError(`vault-backup: set ${name}`);
    return value;
}

function secretFile(name: string): string {
    try {
        return fs.readFileSync(setting(name), "utf8").trim();
    } catch (err) {
        if (err instanceof SettingError) throw err;
        throw new SettingError(`vault-backup: ${name} must name a readable file`);
    }
}

const log = (message: string, fields: object = {}) =>
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), message, ...fields })}\n`);

async function main(): Promise<void> {
    const address = setting("VAULT_ADDR");
    const store = {
        endpoint: setting("BACKUP_ENDPOINT"),
        region: setting("BACKUP_REGION", "us-east-1"),
        bucket: setting("BACKUP_BUCKET"),
        prefix: setting("BACKUP_PREFIX", "vault/"),
        credentials: (() => {
            const text = secretFile("BACKUP_CREDENTIALS_FILE");
            try {
                const c = JSON.parse(text) as { accessKeyId?: unknown; secretAccessKey?: unknown };
                if (typeof c.accessKeyId === "string" && typeof c.secretAccessKey === "string")
                    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
            } catch {
                // the message below; a parse error would quote the file
            }
            throw new SettingError("vault-backup: BACKUP_CREDENTIALS_FILE must hold {accessKeyId, secretAccessKey}");
        })(),
    };
    const key = Buffer.from(secretFile("BACKUP_KEY_FILE"), "base64");
    if (key.length !== 32) throw new SettingError("vault-backup: BACKUP_KEY_FILE must hold 32 bytes, base64");
    const keep = Number(setting("BACKUP_KEEP", "14"));
    if (!Number.isInteger(keep) || keep < 1)
        throw new SettingError("vault-backup: BACKUP_KEEP must be a whole number ≥ 1");

    const role = process.env.VAULT_AUTH_ROLE;
    const token = await step("login", () =>
        role
            ? kubernetesLogin(
                  address,
                  setting("VAULT_AUTH_MOUNT", "kubernetes"),
                  role,
                  setting("VAULT_JWT_FILE", SERVICE_ACCOUNT_TOKEN),
              )
            : secretFile("VAULT_TOKEN_FILE"),
    );
    const result = await backupVault({ vault: { address, token }, store, key, keep });
    log("backup done", result);
}

main().catch((err: unknown) => {
    if (err instanceof SettingError) log(err.message);
    else if (err instanceof BackupError) log("backup failed", { step: err.step, error: err.message });
    else log("backup failed", { error: err instanceof Error ? err.message : "unknown" });
    process.exitCode = 1;
});
