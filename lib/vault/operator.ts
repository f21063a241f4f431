// How Pulumi reaches one Vault server to initialise, join and unseal it: a command that runs the Vault CLI
// against that server — `k3s kubectl exec -i -n vault <pod> -- vault` run over SSH on the first K3s server in
// a cluster, a local `bao` process in tests. Key material and tokens only ever travel on stdin and stdout,
// never in arguments, an environment given on a command line, or an error message.
import { execFile } from "node:child_process";
import type * as pulumi from "@pulumi/pulumi";
import { runSsh, shellQuote, type SshConnection } from "../ssh";

export interface VaultOperator {
    /** Names the server in messages: a pod or an address. */
    name: string;
    /**
     * The command that runs the Vault CLI against this server; arguments are appended to it. It reads the
     * first line of stdin as the token (empty: none) before the CLI starts: end it with `tokenFromStdin(cli)`.
     */
    command: string[];
    /** Environment for that command (VAULT_ADDR, VAULT_CACERT, KUBECONFIG); never a secret. */
    env?: Record<string, string>;
    /** Run the command, with its environment, on this host over SSH (a secret: it holds the key). */
    ssh?: SshConnection;
}

/** A Vault server as the program knows it: its SSH connection, when it has one, is a secret output. */
export type VaultServer = Omit<VaultOperator, "ssh"> & { ssh?: pulumi.Input<SshConnection> };

/** Runs `cli` with VAULT_TOKEN (and BAO_TOKEN) set from stdin's first line, the rest of stdin left to it. */
export function tokenFromStdin(cli: string): string[] {
    const script = 'IFS= read -r t; if [ -n "$t" ]; then export VAULT_TOKEN="$t" BAO_TOKEN="$t"; fi; exec "$@"';
    return ["sh", "-c", script, "sh", cli];
}

export interface SealStatus {
    initialized: boolean;
    sealed: boolean;
    /** The API address of the cluster's active server, once there is one. */
    leaderAddress?: string;
}

/**
 * Runs `vault <args>` against the server, with `token` when given. Exit codes in `okExitCodes` count as success (`vault status`
 * exits 2 when sealed). On failure the error names the server and step and carries only the last line of
 * stderr, with anything that looks like a key or token removed.
 */
export function runVault(
    operator: VaultOperator,
    step: string,
    args: string[],
    options: { token?: string; stdin?: string | Buffer; okExitCodes?: number[] } = {},
): Promise<string> {
    // Bytes after the token's line reach the CLI as they are (a raft snapshot is binary).
    const stdin = Buffer.concat([Buffer.from(`${options.token ?? ""}\n`), Buffer.from(options.stdin ?? "")]);
    const describe = (code: number | "none", lastLine: string) => {
        const redacted = lastLine.replace(/[A-Za-z0-9+/=._-]{24,}/g, "[redacted]");
        return `vault ${step} on ${operator.name} failed: ${redacted || `exit code ${code}`}`;
    };
    if (operator.ssh) {
        // Over SSH the command's environment goes on the remote command line (plain settings only).
        const env = Object.entries(operator.env ?? {}).map(([k, v]) => `${k}=${v}`);
        const remote = ["env", ...env, ...operator.command, ...args].map(shellQuote).join(" ");
        return runSsh(operator.ssh, remote, { stdin, okExitCodes: options.okExitCodes, timeoutMs: 120_000, describe });
    }
    const [file, ...prefix] = operator.command;
    return new Promise<string>((resolve, reject) => {
        const child = execFile(
            file,
            [...prefix, ...args],
            { env: { ...process.env, ...operator.env }, maxBuffer: 1024 * 1024, timeout: 120_000 },
            (error, stdout, stderr) => {
                const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
                if (code === 0 || options.okExitCodes?.includes(code)) return resolve(stdout);
                reject(new Error(describe(code, String(stderr).trim().split("\n").pop() ?? "")));
            },
        );
        child.stdin?.end(stdin);
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
