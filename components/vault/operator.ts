// How Pulumi reaches one Vault server to initialise, join and unseal it: a command that runs the Vault CLI
// against that server — `k3s kubectl exec -i -n vault <pod> -- vault` run over SSH on the first K3s server in
// a cluster, a local `bao` process in tests. Key material only ever travels on stdin and stdout, never in
// arguments or in an error message.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { SshConnection } from "../infra/remote";

export interface VaultOperator {
    /** Names the server in messages: a pod or an address. */
    name: string;
    /** The command that runs the Vault CLI against this server; arguments are appended to it. */
    command: string[];
    /** Environment for that command (VAULT_ADDR, VAULT_CACERT, KUBECONFIG); never a secret. */
    env?: Record<string, string>;
    /** Run the command, with its environment, on this host over SSH (a secret: it holds the key). */
    ssh?: SshConnection;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The local command line: the command itself, or ssh running it (and its environment) on the host. */
function commandLine(operator: VaultOperator, args: string[], keyFile: string): { file: string; argv: string[] } {
    if (!operator.ssh) {
        const [file, ...prefix] = operator.command;
        return { file, argv: [...prefix, ...args] };
    }
    const { host, port, user } = operator.ssh;
    const env = Object.entries(operator.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const remote = ["env", ...env, ...operator.command, ...args].map(shellQuote).join(" ");
    const known = path.join(path.dirname(keyFile), "known_hosts");
    const options = ["BatchMode=yes", "ConnectTimeout=15", "StrictHostKeyChecking=accept-new", "LogLevel=ERROR"];
    return {
        file: "ssh",
        argv: [
            ...["-i", keyFile, "-p", String(port ?? 22)],
            ...[...options, `UserKnownHostsFile=${known}`].flatMap((o) => ["-o", o]),
            `${user}@${host}`,
            remote,
        ],
    };
}

export interface SealStatus {
    initialized: boolean;
    sealed: boolean;
    /** The API address of the cluster's active server, once there is one. */
    leaderAddress?: string;
}

/**
 * Runs `vault <args>` against the server. Exit codes in `okExitCodes` count as success (`vault status`
 * exits 2 when sealed). On failure the error names the server and step and carries only the last line of
 * stderr, with anything that looks like a key or token removed.
 */
export function runVault(
    operator: VaultOperator,
    step: string,
    args: string[],
    options: { stdin?: string; okExitCodes?: number[] } = {},
): Promise<string> {
    const dir = operator.ssh ? fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-vault-")) : "";
    const keyFile = path.join(dir, "key");
    if (operator.ssh) {
        const key = operator.ssh.privateKey;
        fs.writeFileSync(keyFile, key.endsWith("\n") ? key : `${key}\n`, { mode: 0o600 });
    }
    const { file, argv } = commandLine(operator, args, keyFile);
    return new Promise<string>((resolve, reject) => {
        const child = execFile(
            file,
            argv,
            {
                env: { ...process.env, ...(operator.ssh ? {} : operator.env) },
                maxBuffer: 1024 * 1024,
                timeout: 120_000,
            },
            (error, stdout, stderr) => {
                const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
                if (code === 0 || options.okExitCodes?.includes(code)) return resolve(stdout);
                const lastLine =
                    String(stderr)
                        .trim()
                        .split("\n")
                        .pop()
                        ?.replace(/[A-Za-z0-9+/=._-]{24,}/g, "[redacted]") ?? "";
                reject(new Error(`vault ${step} on ${operator.name} failed: ${lastLine || `exit code ${code}`}`));
            },
        );
        child.stdin?.end(options.stdin ?? "");
    }).finally(() => {
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });
}

export async function sealStatus(operator: VaultOperator): Promise<SealStatus> {
    const out = await runVault(operator, "status", ["status", "-format=json"], { okExitCodes: [2] });
    const status = JSON.parse(out) as { initialized?: boolean; sealed?: boolean; leader_address?: string };
    return {
        initialized: status.initialized === true,
        sealed: status.sealed !== false,
        leaderAddress: status.leader_address || undefined,
    };
}
