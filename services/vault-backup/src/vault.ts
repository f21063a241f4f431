// The Vault (OpenBao) HTTP API calls a backup and a restore make. Tokens travel in headers only and never
// appear in an error: errors name the call and Vault's status.
import * as fs from "node:fs";

export class VaultError extends Error {
    override name = "VaultError";
    constructor(
        message: string,
        readonly status?: number,
    ) {
        super(message);
    }
}

export interface VaultAccess {
    /** The Vault service's address; calls that must reach the active node find it with sys/leader. */
    address: string;
    token: string;
}

const trimmed = (address: string) => address.replace(/\/+$/, "");

async function call(address: string, method: string, path: string, token?: string, body?: BodyInit) {
    try {
        return await fetch(`${trimmed(address)}/v1/${path}`, {
            method,
            headers: token === undefined ? {} : { "X-Vault-Token": token },
            body,
        });
    } catch (err) {
        const cause = (err as Error).cause;
        const reason = cause instanceof Error ? cause.message : (err as Error).message;
        throw new VaultError(`${method} ${path} at ${trimmed(address)}: ${reason}`);
    }
}

async function json<T>(address: string, method: string, path: string, token?: string, body?: unknown): Promise<T> {
    const res = await call(address, method, path, token, body === undefined ? undefined : JSON.stringify(body));
    const text = await res.text();
    if (!res.ok) {
        const errors = (JSON.parse(text || "{}") as { errors?: string[] }).errors?.join("; ") ?? "";
        throw new VaultError(`${method} ${path}: Vault answered ${res.status} ${errors}`.trim(), res.status);
    }
    return (text ? JSON.parse(text) : {}) as T;
}

/** A token from Vault's Kubernetes auth method, as the job's service account (one login: a job is short). */
export async function kubernetesLogin(address: string, mount: string, role: string, jwtFile: string) {
    const jwt = fs.readFileSync(jwtFile, "utf8").trim();
    const answer = await json<{ auth?: { client_token?: string } }>(address, "POST", `auth/${mount}/login`, undefined, {
        role,
        jwt,
    });
    if (!answer.auth?.client_token) throw new VaultError(`auth/${mount}/login gave no token for role ${role}`);
    return answer.auth.client_token;
}

/** The active node's address: a standby would answer the snapshot call with an empty 200. */
export async function activeNode(vault: VaultAccess): Promise<string> {
    const leader = await json<{ ha_enabled?: boolean; is_self?: boolean; leader_address?: string }>(
        vault.address,
        "GET",
        "sys/leader",
    );
    // Storage without HA (a dev server): the one node is the active one.
    if (leader.is_self || leader.ha_enabled === false) return trimmed(vault.address);
    if (!leader.leader_address) throw new VaultError("sys/leader names no active node (no leader elected)");
    return trimmed(leader.leader_address);
}

/** The raft snapshot as the node at `node` answers it, unchecked. */
export async function downloadSnapshot(node: string, token: string): Promise<Buffer> {
    const res = await call(node, "GET", "sys/storage/raft/snapshot", token);
    const body = Buffer.from(await res.arrayBuffer());
    if (!res.ok) throw new VaultError(`GET sys/storage/raft/snapshot: Vault answered ${res.status}`, res.status);
    return body;
}

/** Replaces all of the node's data with the snapshot's, even from another cluster; the node ends sealed. */
export async function forceRestore(vault: VaultAccess, snapshot: Buffer): Promise<void> {
    const res = await call(
        vault.address,
        "POST",
        "sys/storage/raft/snapshot-force",
        vault.token,
        new Uint8Array(snapshot),
    );
    if (!res.ok) {
        const text = await res.text();
        throw new VaultError(`POST sys/storage/raft/snapshot-force: Vault answered ${res.status} ${text}`, res.status);
    }
}

export interface SealStatus {
    initialized: boolean;
    sealed: boolean;
    t: number;
    n: number;
}

export const sealStatus = (address: string) => json<SealStatus>(address, "GET", "sys/seal-status");

/** What the node holds beyond a fresh initialisation's own mounts and auth methods. */
export async function dataHeld(vault: VaultAccess): Promise<string[]> {
    const [mounts, auths] = await Promise.all([
        json<{ data: Record<string, unknown> }>(vault.address, "GET", "sys/mounts", vault.token),
        json<{ data: Record<string, unknown> }>(vault.address, "GET", "sys/auth", vault.token),
    ]);
    const fresh = new Set(["cubbyhole/", "identity/", "sys/"]);
    return [
        ...Object.keys(mounts.data)
            .filter((m) => !fresh.has(m))
            .map((m) => `secrets engine ${m}`),
        ...Object.keys(auths.data)
            .filter((a) => a !== "token/")
            .map((a) => `auth method ${a}`),
    ];
}

/** Submits unseal keys until the node is unsealed; fails if they run out first or Vault refuses one. */
export async function unseal(address: string, keys: string[]): Promise<void> {
    for (const key of keys) {
        const status = await json<SealStatus>(address, "POST", "sys/unseal", undefined, { key }).catch((err) => {
            throw new VaultError(
                `sys/unseal refused a key (${(err as VaultError).status}): these are not the keys of the snapshot's Vault`,
            );
        });
        if (!status.sealed) return;
    }
    throw new VaultError(`Vault is still sealed after ${keys.length} unseal keys: too few keys`);
}

/** Waits until the node is the active one (sys/health 200). */
export async function waitActive(address: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const status = await call(address, "GET", "sys/health").then(
            (r) => r.status,
            () => 0,
        );
        if (status === 200) return;
        if (Date.now() > deadline) throw new VaultError(`Vault did not become active within ${timeoutMs} ms`, status);
        await new Promise((r) => setTimeout(r, 250));
    }
}
