// The system's OpenSSH client, as the remote steps and the Vault operator both use it: the key written to a
// private temporary folder for one run and removed after it, host keys accepted on first use and kept in
// that folder only, no prompts.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface SshConnection {
    host: string;
    port?: number;
    user: string;
    privateKey: string;
}

/** One argument for a POSIX shell, in single quotes. */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `run` with ssh's arguments up to and including the destination; the key exists only meanwhile. */
export async function withSsh<T>(connection: SshConnection, run: (sshArgs: string[]) => Promise<T>): Promise<T> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-ssh-"));
    try {
        const key = path.join(dir, "key");
        const { privateKey } = connection;
        fs.writeFileSync(key, privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, { mode: 0o600 });
        const options = [
            "BatchMode=yes",
            "ConnectTimeout=15",
            "StrictHostKeyChecking=accept-new",
            `UserKnownHostsFile=${path.join(dir, "known_hosts")}`,
            "LogLevel=ERROR",
        ];
        return await run([
            ...["-i", key, "-p", String(connection.port ?? 22)],
            ...options.flatMap((o) => ["-o", o]),
            `${connection.user}@${connection.host}`,
        ]);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
