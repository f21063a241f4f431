// The backup bucket: one object per snapshot, `<prefix><taken-at, ISO 8601 with - for :>.snap.enc`, so that
// names sort by time; and `<prefix>last-success.json`, rewritten after each backup that went through, for a
// check that looks at the bucket from outside the cluster.
import { Readable } from "node:stream";
import {
    DeleteObjectCommand,
    GetObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
    S3Client,
} from "@aws-sdk/client-s3";

export interface BackupStore {
    endpoint: string;
    region?: string;
    bucket: string;
    /** Folder of the backups in the bucket; "vault/" by default. */
    prefix?: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
}

export interface StoredBackup {
    /** The object's key in the bucket: what `restoreVault` takes as `backup`. */
    key: string;
    takenAt: Date;
    bytes: number;
}

export interface LastSuccess {
    key: string;
    takenAt: string;
    raftIndex: number;
    bytes: number;
}

const SUFFIX = ".snap.enc";
export const prefixOf = (store: BackupStore) => store.prefix ?? "vault/";
export const lastSuccessKey = (store: BackupStore) => `${prefixOf(store)}last-success.json`;

export function backupKey(store: BackupStore, takenAt: Date): string {
    return `${prefixOf(store)}${takenAt.toISOString().replaceAll(":", "-")}${SUFFIX}`;
}

function takenAtOf(key: string, prefix: string): Date | undefined {
    const stamp = key.slice(prefix.length, -SUFFIX.length);
    const m = /^(\d{4}-\d\d-\d\dT\d\d)-(\d\d)-(\d\d(?:\.\d+)?Z)$/.exec(stamp);
    return m && key.endsWith(SUFFIX) ? new Date(`${m[1]}:${m[2]}:${m[3]}`) : undefined;
}

export function storeClient(store: BackupStore): S3Client {
    return new S3Client({
        endpoint: store.endpoint,
        region: store.region ?? "us-east-1",
        forcePathStyle: true,
        credentials: store.credentials,
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        maxAttempts: 2,
    });
}

/** Every backup in the bucket, oldest first. */
/** Every object under `prefix`, page after page. */
export async function listObjects(
    client: S3Client,
    bucket: string,
    prefix: string,
): Promise<{ key: string; bytes: number }[]> {
    const found: { key: string; bytes: number }[] = [];
    let token: string | undefined;
    do {
        const page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) if (o.Key) found.push({ key: o.Key, bytes: o.Size ?? 0 });
        token = page.NextContinuationToken;
    } while (token);
    return found;
}

export async function listBackups(store: BackupStore, client = storeClient(store)): Promise<StoredBackup[]> {
    const prefix = prefixOf(store);
    return (await listObjects(client, store.bucket, prefix))
        .flatMap(({ key, bytes }) => {
            const takenAt = takenAtOf(key, prefix);
            return takenAt ? [{ key, takenAt, bytes }] : [];
        })
        .sort((a, b) => a.takenAt.getTime() - b.takenAt.getTime());
}

export async function upload(client: S3Client, bucket: string, key: string, body: Iterable<Buffer>, bytes: number) {
    await client.send(
        new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: Readable.from(body),
            ContentLength: bytes,
            ContentType: "application/octet-stream",
        }),
    );
}

export async function download(client: S3Client, bucket: string, key: string): Promise<Buffer> {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
}

/** Deletes all but the `keep` newest backups; returns the keys it deleted. */
export async function prune(store: BackupStore, client: S3Client, keep: number): Promise<string[]> {
    const old = (await listBackups(store, client)).slice(0, -keep).map((b) => b.key);
    for (const Key of old) await client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key }));
    return old;
}

export async function readLastSuccess(
    store: BackupStore,
    client = storeClient(store),
): Promise<LastSuccess | undefined> {
    const text = await download(client, store.bucket, lastSuccessKey(store)).then(
        (b) => b.toString("utf8"),
        (err: Error) => {
            if (err.name === "NoSuchKey") return undefined;
            throw err;
        },
    );
    return text === undefined ? undefined : (JSON.parse(text) as LastSuccess);
}
