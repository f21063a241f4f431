// Vault policies as text, pure functions of the mounts and the app: least privilege for each app, and an
// admin policy for day-2 work so the root token is not needed after set-up. Tested against a real OpenBao.

export interface Mounts {
    /** KV version 2. */
    kv: string;
    transit: string;
    pki: string;
}

export const DEFAULT_MOUNTS: Mounts = { kv: "secret", transit: "transit", pki: "pki" };

/** One path's capabilities, in a policy's HCL. */
export const rule = (path: string, capabilities: string[]) =>
    `path "${path}" {\n  capabilities = [${capabilities.map((c) => `"${c}"`).join(", ")}]\n}`;

/**
 * One app: its own transit key (encrypt, decrypt, rewrap, data keys; never export, rotate or delete), its
 * own KV folder read-only, and certificates for its service names from the PKI role of the same name.
 */
export function appPolicy(app: string, mounts: Mounts = DEFAULT_MOUNTS): string {
    return [
        ...["encrypt", "decrypt", "rewrap"].map((op) => rule(`${mounts.transit}/${op}/${app}`, ["update"])),
        rule(`${mounts.transit}/datakey/wrapped/${app}`, ["update"]),
        rule(`${mounts.transit}/keys/${app}`, ["read"]),
        rule(`${mounts.kv}/data/apps/${app}/*`, ["read"]),
        rule(`${mounts.kv}/metadata/apps/${app}/*`, ["read", "list"]),
        rule(`${mounts.pki}/issue/${app}`, ["update"]),
    ].join("\n\n");
}

/**
 * Day-2 administration without the root token: mounts, auth methods, policies, keys and secrets, audit
 * devices, raft status; not `sys/raw`, not sealing, not removing raft peers, never a root token.
 */
export function adminPolicy(mounts: Mounts = DEFAULT_MOUNTS): string {
    const manage = ["create", "read", "update", "delete", "list"];
    return [
        rule("sys/mounts", ["read"]),
        rule("sys/mounts/*", [...manage, "sudo"]),
        rule("sys/auth", ["read"]),
        rule("sys/auth/*", [...manage, "sudo"]),
        rule("sys/policies/acl/*", manage),
        rule("sys/audit", ["read", "sudo"]),
        rule("sys/audit/*", [...manage, "sudo"]),
        rule("sys/storage/raft/configuration", ["read"]),
        // A restore (the family tool's `restore`) replaces Vault's data with a snapshot.
        rule("sys/storage/raft/snapshot-force", ["update", "sudo"]),
        rule("sys/health", ["read"]),
        rule("auth/*", manage),
        rule(`${mounts.kv}/*`, manage),
        rule(`${mounts.transit}/*`, manage),
        rule(`${mounts.pki}/*`, manage),
        // sudo: tokens for policies other than its own (never root: only a root token can give that).
        rule("auth/token/create", ["update", "sudo"]),
    ].join("\n\n");
}
