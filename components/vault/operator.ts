// How Pulumi reaches one Vault server to initialise, join and unseal it: a command that runs the Vault CLI
// against that server — `kubectl exec -i <pod> -- vault` in a cluster, a local `bao` process in tests.
// Key material only ever travels on stdin and stdout, never in arguments or in an error message.
import { execFile } from "node:child_process";

export interface VaultOperator {
    /** Names the server in messages: a pod or an address. */
    name: string;
    /** The command that runs the Vault CLI against this server; arguments are appended to it. */
    command: string[];
    /** Environment for that command (VAULT_ADDR, VAULT_CACERT, KUBECONFIG); never a secret. */
    env?: Record<string, string>;
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
    const [file, ...prefix] = operator.command;
    return new Promise((resolve, reject) => {
        const child = execFile(
            file,
            [...prefix, ...args],
            { env: { ...process.env, ...operator.env }, maxBuffer: 1024 * 1024, timeout: 120_000 },
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
