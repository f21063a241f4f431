// Vault from a backup: the backup is downloaded, decrypted and its snapshot checked before the target Vault
// is touched; the plan (which snapshot, what is lost) is given before anything changes; a target that holds
// data is refused unless `overwrite`. Then the snapshot replaces the target's data (snapshot-force), the
// target restarts to read the snapshot's seal configuration and is unsealed with the snapshot's keys.
import { open } from "./envelope";
import { checkSnapshot } from "./snapshot";
import { type BackupStore, download, listBackups, type StoredBackup, storeClient } from "./store";
import { dataHeld, forceRestore, sealStatus, unseal, type VaultAccess, VaultError, waitActive } from "./vault";

export class RestoreError extends Error {
    override name = "RestoreError";
}

export interface RestorePlan {
    backup: string;
    takenAt: Date;
    raftIndex: number;
    /** What the restore loses, in words: every write to Vault after the snapshot. */
    lost: string;
    /** What the target holds now and loses (empty for a freshly initialised Vault). */
    replaces: string[];
}

export interface RestoreOptions {
    store: BackupStore;
    /** The 32-byte backup key. */
    key: Buffer;
    /** The object key of the backup (`listBackups`); the newest one when not given. */
    backup?: string;
    /** The target: an initialised, unsealed Vault and a token of it that may restore (its root token). */
    vault: VaultAccess;
    /** The unseal keys of the Vault the snapshot was taken from (the stack's state keeps them). */
    unsealKeys: string[];
    /**
     * Restarts the target's server (in a cluster: deletes its pod) and resolves once it listens again. After
     * snapshot-force the running server still holds the seal configuration of its own initialisation and
     * refuses the snapshot's keys (OpenBao 2.4); started again, it reads the restored one.
     */
    restartVault: () => Promise<void>;
    /** Replace a target that holds data; refused otherwise. */
    overwrite?: boolean;
    /** Told the plan before the target is touched; a throw here stops the restore with nothing changed. */
    onPlan?: (plan: RestorePlan) => void | Promise<void>;
    timeoutMs?: number;
}

export interface RestoreResult extends RestorePlan {
    restoredAt: Date;
}

/** Downloads and opens a backup: the snapshot inside, checked, and when it was taken. */
export async function fetchBackup(store: BackupStore, key: Buffer, backup?: string) {
    const client = storeClient(store);
    try {
        let chosen: string | undefined = backup;
        if (!chosen) {
            const all: StoredBackup[] = await listBackups(store, client);
            chosen = all.at(-1)?.key;
            if (!chosen) throw new RestoreError(`no backup in s3://${store.bucket}/${store.prefix ?? "vault/"}`);
        }
        const sealed = await download(client, store.bucket, chosen);
        const { plain, takenAt } = open(sealed, key);
        const info = checkSnapshot(plain);
        return { backup: chosen, snapshot: plain, takenAt, info };
    } finally {
        client.destroy();
    }
}

export async function restoreVault(options: RestoreOptions): Promise<RestoreResult> {
    const { backup, snapshot, takenAt, info } = await fetchBackup(options.store, options.key, options.backup);
    const status = await sealStatus(options.vault.address);
    if (!status.initialized || status.sealed)
        throw new RestoreError(
            "the target Vault must be initialised and unsealed (a fresh one: `bao operator init`, unseal) before a restore",
        );
    const replaces = await dataHeld(options.vault);
    if (replaces.length > 0 && !options.overwrite)
        throw new RestoreError(
            `the target Vault holds data (${replaces.join(", ")}); refusing to overwrite it without overwrite`,
        );
    const plan: RestorePlan = {
        backup,
        takenAt,
        raftIndex: info.index,
        lost: `writes to Vault after ${takenAt.toISOString()} (raft index ${info.index}) are lost`,
        replaces,
    };
    await options.onPlan?.(plan);

    const timeoutMs = options.timeoutMs ?? 60_000;
    await forceRestore(options.vault, snapshot);
    await options.restartVault();
    try {
        await unseal(options.vault.address, options.unsealKeys);
    } catch (err) {
        throw new RestoreError(
            `the snapshot is restored but Vault stays sealed: ${(err as Error).message}. Unseal it with the keys ` +
                `that were current at ${takenAt.toISOString()}`,
        );
    }
    await waitActive(options.vault.address, timeoutMs).catch((err: VaultError) => {
        throw new RestoreError(`the snapshot is restored and unsealed, but ${err.message}`);
    });
    return { ...plan, restoredAt: new Date() };
}
