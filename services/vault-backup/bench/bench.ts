// Vault snapshot and restore times with 10 000 KV secrets and 100 transit keys on a real OpenBao raft server,
// and the read-back rate of objects through storage-s3-api after the restore. The backup and the restore are
// the library's (the CronJob and the family tool run the same code); the bucket is on the first S3 backend.
import * as assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
    baoApi,
    createTransitKey,
    s3Backends,
    s3Client,
    startOpenBaoRaft,
    startS3Backend,
    writeBenchReport,
} from "@peoples-cloud/testkit";
import { spawnService } from "@peoples-cloud/storage-s3-api/test/chain";
import { backupVault } from "../src/backup";
import { restoreVault } from "../src/restore";
import { initialise, startVault } from "../test/harness";

const SECRETS = 10_000;
const TRANSIT_KEYS = 100;
const OBJECTS = 200;
const OBJECT_BYTES = 256 * 1024;

async function several(count: number, work: (i: number) => Promise<unknown>, width = 16): Promise<void> {
    let next = 0;
    await Promise.all(
        Array.from({ length: width }, async () => {
            while (next < count) await work(next++);
        }),
    );
}

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function main() {
    const backendKind = s3Backends()[0];
    const backend = await startS3Backend(backendKind);
    const original = await startVault();
    let restored: Awaited<ReturnType<typeof initialise>> | undefined;
    const direct = s3Client(backend.url, backend.accessKeyId, backend.secretAccessKey);
    try {
        await direct.send(new CreateBucketCommand({ Bucket: "vault-backups" }));
        const store = {
            endpoint: backend.url,
            bucket: "vault-backups",
            credentials: { accessKeyId: backend.accessKeyId, secretAccessKey: backend.secretAccessKey },
        };
        const key = randomBytes(32);

        await createTransitKey(original.server, "storage-s3-api");
        await several(TRANSIT_KEYS - 1, (i) =>
            baoApi(original.server, "POST", `transit/keys/app-${i}`, { type: "aes256-gcm96" }),
        );
        await baoApi(original.server, "POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
        let started = process.hrtime.bigint();
        await several(SECRETS, (i) =>
            baoApi(original.server, "POST", `secret/data/family/${i}`, {
                data: { value: randomBytes(24).toString("hex") },
            }),
        );
        const loadSeconds = seconds(started);

        const service = await spawnService(backend, { url: original.server.url, rootToken: original.rootToken });
        await service.s3.send(new CreateBucketCommand({ Bucket: "files" }));
        const sums = new Map<string, string>();
        await several(
            OBJECTS,
            async (i) => {
                const body = randomBytes(OBJECT_BYTES);
                sums.set(`o/${i}`, sha(body));
                await service.s3.send(new PutObjectCommand({ Bucket: "files", Key: `o/${i}`, Body: body }));
            },
            8,
        );
        await service.stop();

        started = process.hrtime.bigint();
        const backup = await backupVault({
            vault: { address: original.server.url, token: original.rootToken },
            store,
            key,
            keep: 14,
        });
        const snapshotSeconds = seconds(started);
        await original.server.stop();

        restored = await initialise(await startOpenBaoRaft("vault-0"), 1, 1);
        const target = restored;
        started = process.hrtime.bigint();
        await restoreVault({
            store,
            key,
            vault: { address: target.server.url, token: target.rootToken },
            unsealKeys: original.unsealKeys.slice(0, 2),
            restartVault: () => target.server.restart(),
        });
        const restoreSeconds = seconds(started);

        const after = await spawnService(backend, { url: target.server.url, rootToken: original.rootToken });
        started = process.hrtime.bigint();
        await several(
            OBJECTS,
            async (i) => {
                const got = await after.s3.send(new GetObjectCommand({ Bucket: "files", Key: `o/${i}` }));
                assert.equal(sha(await got.Body!.transformToByteArray()), sums.get(`o/${i}`));
            },
            8,
        );
        const readSeconds = seconds(started);
        await after.stop();

        const figures = {
            secrets: SECRETS,
            transitKeys: TRANSIT_KEYS,
            backend: backendKind,
            loadSecondsForSecrets: loadSeconds,
            snapshot: { bytes: backup.bytes, raftIndex: backup.raftIndex, seconds: snapshotSeconds },
            restore: {
                seconds: restoreSeconds,
                note: "download, decrypt, check, snapshot-force, restart, unseal, active",
            },
            readBack: {
                objects: OBJECTS,
                objectBytes: OBJECT_BYTES,
                seconds: readSeconds,
                objectsPerSecond: OBJECTS / readSeconds,
                mibPerSecond: (OBJECTS * OBJECT_BYTES) / 1024 ** 2 / readSeconds,
            },
        };
        const file = writeBenchReport("vault-backup", "backup, restore and read-back on loopback, one run", figures);
        console.log(JSON.stringify(figures, null, 2));
        console.log(`report: ${file}`);
    } finally {
        direct.destroy();
        await Promise.all([backend.stop(), original.server.stop(), restored?.server.stop()]);
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
