// One backup, as the CronJob runs it: a snapshot from the active node, checked, encrypted and uploaded, then
// the oldest backups beyond `keep` deleted and the last-success marker rewritten. A failure names its step.
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { seal, sealedLength } from "./envelope";
import { checkSnapshot } from "./snapshot";
import { backupKey, type BackupStore, type LastSuccess, lastSuccessKey, prune, storeClient, upload } from "./store";
import { activeNode, downloadSnapshot, type VaultAccess } from "./vault";

export type BackupStep = "login" | "find-active-node" | "snapshot" | "check" | "upload" | "prune" | "mark-success";

export class BackupError extends Error {
    override name = "BackupError";
    constructor(
        readonly step: BackupStep,
        cause: unknown,
    ) {
        super(`vault-backup failed at ${step}: ${cause instanceof Error ? cause.message : String(cause)}`);
    }
}

/** Runs `work` as `step`: any error comes out as a BackupError naming the step. */
export async function step<T>(name: BackupStep, work: () => Promise<T> | T): Promise<T> {
    try {
        return await work();
    } catch (err) {
        throw err instanceof BackupError ? err : new BackupError(name, err);
    }
}

export interface BackupOptions {
    vault: VaultAccess;
    store: BackupStore;
    /** The 32-byte backup key. */
    key: Buffer;
    /** How many backups to keep; older ones are deleted after an upload. */
    keep: number;
    chunkBytes?: number;
}

export interface BackupResult extends LastSuccess {
    node: string;
    pruned: string[];
}

export async function backupVault(options: BackupOptions): Promise<BackupResult> {
    const node = await step("find-active-node", () => activeNode(options.vault));
    const takenAt = new Date();
    const snapshot = await step("snapshot", () => downloadSnapshot(node, options.vault.token));
    const info = await step("check", () => checkSnapshot(snapshot));
    const client = storeClient(options.store);
    try {
        const key = backupKey(options.store, takenAt);
        await step("upload", () =>
            upload(
                client,
                options.store.bucket,
                key,
                seal(snapshot, options.key, takenAt, options.chunkBytes),
                sealedLength(snapshot.length, options.chunkBytes),
            ),
        );
        const pruned = await step("prune", () => prune(options.store, client, Math.max(1, options.keep)));
        const success: LastSuccess = { key, takenAt: takenAt.toISOString(), raftIndex: info.index, bytes: info.bytes };
        await step("mark-success", () =>
            client.send(
                new PutObjectCommand({
                    Bucket: options.store.bucket,
                    Key: lastSuccessKey(options.store),
                    Body: JSON.stringify(success),
                    ContentType: "application/json",
                }),
            ),
        );
        return { ...success, node, pruned };
    } finally {
        client.destroy();
    }
}
