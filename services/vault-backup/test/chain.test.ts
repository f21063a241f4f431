// The whole chain with real parts: OpenBao raft initialised with Shamir keys, storage-s3-api and storage-kv-api
// as their own processes on an S3 backend, objects and indexed documents written through them. The backup job
// (its own process, the CronJob's code) takes a snapshot; OpenBao's data is destroyed; a fresh OpenBao is
// initialised with new keys, the snapshot restored into it and unsealed with the original keys; every object
// reads back byte for byte, every indexed query matches a scan, and a secret written after the snapshot is
// gone, as the restore said beforehand. Then the refusals: a corrupted or truncated backup, a Vault that holds
// data, a backup target that is down or refuses the credentials; and no secret in any output.
import * as assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import {
    baoApi,
    createTransitKey,
    freePort,
    type S3Server,
    s3Backends,
    s3Client,
    startOpenBaoRaft,
    startKubernetesApi,
    startS3Backend,
} from "@peoples-cloud/testkit";
import { type ServiceProcess, spawnService } from "@peoples-cloud/storage-s3-api/test/chain";
import { restoreVault, type RestorePlan } from "../src/restore";
import { listBackups, readLastSuccess, type BackupStore } from "../src/store";
import {
    initialise,
    type InitialisedVault,
    type KvProcess,
    readSecret,
    runBackupJob,
    secretsFolder,
    spawnKv,
    startVault,
    writeSecret,
} from "./harness";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function kvCall(kv: KvProcess, method: string, route: string, body?: unknown) {
    const res = await fetch(`${kv.url}${route}`, {
        method,
        headers: { Authorization: `Bearer ${kv.token}` },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

type Item = { key: string; data: { group: number; n: number } };

/** Every page of a listing or a query, followed by its cursor. */
async function allPages(fetchPage: (cursor?: string) => ReturnType<typeof kvCall>): Promise<Item[]> {
    const items: Item[] = [];
    let cursor: string | undefined;
    do {
        const page = await fetchPage(cursor);
        assert.equal(page.status, 200, JSON.stringify(page.body));
        items.push(...(page.body.items as Item[]));
        cursor = page.body.cursor as string | undefined;
    } while (cursor);
    return items;
}

describe("vault-backup: snapshot, encrypt, ship and restore Vault under the storage chain", function () {
    this.timeout(300_000);
    const backendKind = s3Backends()[0];
    let backend: S3Server;
    let direct: S3Client;
    let store: BackupStore;
    const key = randomBytes(32);
    const kvSecret = randomBytes(32);
    let original: InitialisedVault;
    let restored: InitialisedVault;
    const outputs: string[] = [];
    const objects = new Map<string, Buffer>();
    const docs = new Map<string, { group: number; n: number }>();
    let s3api: ServiceProcess | undefined;
    let kv: KvProcess | undefined;
    let plan: RestorePlan | undefined;
    let backupTime: Date;
    const secrets: string[] = [];

    async function startServices(vault: InitialisedVault, createBuckets = false) {
        s3api = await spawnService(backend, { url: vault.server.url, rootToken: vault.rootToken });
        if (createBuckets)
            for (const Bucket of ["files", "kv-store"]) await s3api.s3.send(new CreateBucketCommand({ Bucket }));
        kv = await spawnKv(s3api.url, s3api.accessKey, kvSecret);
    }
    async function stopServices() {
        if (kv) outputs.push(kv.output());
        if (s3api) outputs.push(s3api.output());
        await kv?.stop();
        await s3api?.stop();
        kv = s3api = undefined;
    }

    before(async () => {
        backend = await startS3Backend(backendKind);
        direct = s3Client(backend.url, backend.accessKeyId, backend.secretAccessKey);
        await direct.send(new CreateBucketCommand({ Bucket: "vault-backups" }));
        store = {
            endpoint: backend.url,
            bucket: "vault-backups",
            credentials: { accessKeyId: backend.accessKeyId, secretAccessKey: backend.secretAccessKey },
        };
        original = await startVault();
        await createTransitKey(original.server, "storage-s3-api");
        await baoApi(original.server, "POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
        await writeSecret(original.server, "family/wifi", { password: "before the snapshot" });
    });
    after(async () => {
        await stopServices();
        direct?.destroy();
        await Promise.all([backend?.stop(), original?.server.stop(), restored?.server.stop()]);
    });

    it("restores Vault from the job's snapshot into a fresh OpenBao: every object and every indexed query reads back", async () => {
        await startServices(original, true);
        const s3 = s3api!.s3;
        for (const [i, size] of [0, 1, 4096, 100_003, 3 * 1024 * 1024 + 7].entries()) {
            const body = randomBytes(size);
            objects.set(`photos/${i}-${size}.bin`, body);
            await s3.send(new PutObjectCommand({ Bucket: "files", Key: `photos/${i}-${size}.bin`, Body: body }));
        }
        const made = await kvCall(kv!, "PUT", "/v1/collections/chores", {
            indexes: [{ path: "group" }, { path: "n", unique: true }],
        });
        assert.equal(made.status, 201, JSON.stringify(made.body));
        for (let n = 0; n < 40; n++) {
            const doc = { group: n % 4, n };
            docs.set(`chore-${n}`, doc);
            assert.equal((await kvCall(kv!, "PUT", `/v1/collections/chores/docs/chore-${n}`, doc)).status, 201);
        }
        await stopServices();

        backupTime = new Date();
        const job = await runBackupJob({
            vaultAddress: original.server.url,
            vaultToken: original.rootToken,
            store,
            key,
        });
        outputs.push(job.output);
        assert.equal(job.code, 0, job.output);
        const backups = await listBackups(store);
        assert.equal(backups.length, 1);
        assert.ok(backups[0].takenAt >= backupTime);
        const marker = await readLastSuccess(store);
        assert.equal(marker?.key, backups[0].key);
        // Encrypted before it left: the gzip magic is nowhere at the start, the object begins with the format.
        const stored = await direct.send(new GetObjectCommand({ Bucket: "vault-backups", Key: backups[0].key }));
        assert.equal(
            Buffer.from(await stored.Body!.transformToByteArray())
                .subarray(0, 8)
                .toString(),
            "PCVAULTB",
        );

        // A write after the snapshot: the restore must say it is lost, and it is.
        await writeSecret(original.server, "family/late", { note: "after the snapshot" });
        // OpenBao's data destroyed.
        await original.server.stop();

        restored = await initialise(await startOpenBaoRaft("vault-0"), 1, 1);
        const result = await restoreVault({
            store,
            key,
            vault: { address: restored.server.url, token: restored.rootToken },
            unsealKeys: original.unsealKeys.slice(0, 2),
            restartVault: () => restored.server.restart(),
            onPlan: async (p) => {
                plan = p;
                // Told before anything changed: the fresh Vault still has nothing but its own mounts.
                const mounts = (await baoApi(restored.server, "GET", "sys/mounts")) as { data: object };
                assert.ok(!("transit/" in mounts.data));
            },
        });
        assert.ok(plan, "the plan came before the restore");
        assert.match(result.lost, new RegExp(`writes to Vault after ${backups[0].takenAt.toISOString()}`));
        assert.deepEqual(result.replaces, []);

        // The original root token is back (it is in the snapshot); the fresh one is gone.
        restored.server.rootToken = original.rootToken;
        assert.deepEqual(await readSecret(restored.server, original.rootToken, "family/wifi"), {
            password: "before the snapshot",
        });
        assert.equal(await readSecret(restored.server, original.rootToken, "family/late"), undefined);
        const fresh = await fetch(`${restored.server.url}/v1/auth/token/lookup-self`, {
            headers: { "X-Vault-Token": restored.rootToken },
        });
        assert.equal(fresh.status, 403);

        await startServices({ ...restored, rootToken: original.rootToken });
        for (const [name, body] of objects) {
            const got = await s3api!.s3.send(new GetObjectCommand({ Bucket: "files", Key: name }));
            assert.equal(sha(await got.Body!.transformToByteArray()), sha(body), name);
        }
        const scanned = await allPages((cursor) =>
            kvCall(kv!, "GET", `/v1/collections/chores/docs?limit=15${cursor ? `&cursor=${cursor}` : ""}`),
        );
        assert.deepEqual(scanned.map((i) => i.key).sort(), [...docs.keys()].sort());
        const scan = new Map<string, { group: number; n: number }>();
        for (const { key: k } of scanned) {
            scan.set(k, (await kvCall(kv!, "GET", `/v1/collections/chores/docs/${k}`)).body as Item["data"]);
        }
        assert.deepEqual(scan, docs);
        const queries = [
            ...[0, 1, 2, 3].map((group) => ({ index: "group", eq: group })),
            { index: "n", gte: 7, lt: 23 },
            { index: "n", eq: 39 },
        ];
        for (const q of queries) {
            const answer = await allPages((cursor) =>
                kvCall(kv!, "POST", "/v1/collections/chores/query", { ...q, limit: 7, cursor }),
            );
            const field = q.index as "group" | "n";
            const matches = [...scan]
                .filter(([, d]) =>
                    "eq" in q ? d[field] === q.eq : d[field] >= (q.gte ?? -Infinity) && d[field] < (q.lt ?? Infinity),
                )
                .map(([k]) => k)
                .sort();
            assert.deepEqual(answer.map((i) => i.key).sort(), matches, JSON.stringify(q));
            assert.ok(matches.length > 0);
        }
    });

    /** The restored Vault answers, unsealed, with the data it had. */
    async function assertVaultAsItWas() {
        assert.equal((await fetch(`${restored.server.url}/v1/sys/health`)).status, 200);
        assert.deepEqual(await readSecret(restored.server, original.rootToken, "family/wifi"), {
            password: "before the snapshot",
        });
    }

    it("refuses a corrupted or truncated backup with a clear error before it touches the running Vault", async () => {
        const [good] = await listBackups(store);
        const sealed = Buffer.from(
            await (
                await direct.send(new GetObjectCommand({ Bucket: "vault-backups", Key: good.key }))
            ).Body!.transformToByteArray(),
        );
        const corrupted = Buffer.from(sealed);
        corrupted[Math.floor(sealed.length / 2)] ^= 0x40;
        const truncated = sealed.subarray(0, sealed.length - 1000);
        for (const [i, [what, bytes]] of [
            ["corrupted", corrupted],
            ["truncated", truncated],
        ].entries()) {
            const name = `vault/2099-01-0${i + 1}T00-00-00.000Z.snap.enc`;
            await direct.send(new PutObjectCommand({ Bucket: "vault-backups", Key: name, Body: bytes as Buffer }));
            let touched = 0;
            await assert.rejects(
                restoreVault({
                    store,
                    key,
                    backup: name,
                    vault: { address: restored.server.url, token: original.rootToken },
                    unsealKeys: original.unsealKeys,
                    overwrite: true,
                    restartVault: () => Promise.resolve(void touched++),
                    onPlan: () => void touched++,
                }),
                /fails authentication: it is truncated or corrupted/,
                `${what as string}`,
            );
            assert.equal(touched, 0);
            await assertVaultAsItWas();
        }
    });

    it("refuses to overwrite a Vault that holds data unless asked", async () => {
        let touched = 0;
        await assert.rejects(
            restoreVault({
                store,
                key,
                backup: (await listBackups(store))[0].key,
                vault: { address: restored.server.url, token: original.rootToken },
                unsealKeys: original.unsealKeys,
                restartVault: () => Promise.resolve(void touched++),
                onPlan: () => void touched++,
            }),
            /the target Vault holds data \(.*secrets engine transit\/.*\); refusing to overwrite it/,
        );
        assert.equal(touched, 0);
        await assertVaultAsItWas();
    });

    it("fails the job naming the step when the backup target is down or refuses the credentials; the marker stays", async () => {
        const before = await readLastSuccess(store);
        const count = (await listBackups(store)).length;
        const down = { ...store, endpoint: `http://127.0.0.1:${await freePort()}` };
        const refused = {
            ...store,
            credentials: { ...store.credentials, secretAccessKey: randomBytes(24).toString("base64url") },
        };
        for (const target of [down, refused]) {
            const job = await runBackupJob({
                vaultAddress: restored.server.url,
                vaultToken: original.rootToken,
                store: target,
                key,
            });
            outputs.push(job.output);
            assert.equal(job.code, 1, job.output);
            const last = job.logs.at(-1)!;
            assert.equal(last.message, "backup failed");
            assert.equal(last.step, "upload", job.output);
        }
        assert.deepEqual(await readLastSuccess(store), before);
        assert.equal((await listBackups(store)).length, count);
    });

    it("snapshots the active node when pointed at a standby, and refuses an empty 200 without uploading", async () => {
        const [active, standby] = await Promise.all([startOpenBaoRaft("vault-0"), startOpenBaoRaft("vault-1")]);
        const stub = http.createServer((req, res) => {
            res.setHeader("Content-Type", "application/json");
            if (req.url === "/v1/sys/leader") res.end(JSON.stringify({ is_self: true, leader_address: "" }));
            else res.end(); // the snapshot: 200 and no body, as a standby answers
        });
        try {
            const cluster = await initialise(active);
            await fetch(`${standby.url}/v1/sys/storage/raft/join`, {
                method: "POST",
                body: JSON.stringify({ leader_api_addr: active.url }),
            });
            for (const k of cluster.unsealKeys.slice(0, 2))
                await fetch(`${standby.url}/v1/sys/unseal`, { method: "POST", body: JSON.stringify({ key: k }) });
            for (let i = 0; (await fetch(`${standby.url}/v1/sys/health`)).status !== 429; i++) {
                assert.ok(i < 100, "the second node became a standby");
                await new Promise((r) => setTimeout(r, 200));
            }
            const separate = { ...store, prefix: "cluster/" };
            const job = await runBackupJob({
                vaultAddress: standby.url,
                vaultToken: cluster.rootToken,
                store: separate,
                key,
            });
            outputs.push(job.output);
            assert.equal(job.code, 0, job.output);
            assert.equal(job.logs.at(-1)!.node, active.url);
            assert.equal((await listBackups(separate)).length, 1);

            await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
            const stand = { ...store, prefix: "standby/" };
            const empty = await runBackupJob({
                vaultAddress: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
                vaultToken: cluster.rootToken,
                store: stand,
                key,
            });
            outputs.push(empty.output);
            assert.equal(empty.code, 1, empty.output);
            assert.equal(empty.logs.at(-1)!.step, "check");
            assert.match(
                String(empty.logs.at(-1)!.error),
                /the snapshot is empty \(a standby node answers an empty 200/,
            );
            assert.deepEqual(await listBackups(stand), []);
            assert.equal(await readLastSuccess(stand), undefined);
            secrets.push(cluster.rootToken, ...cluster.unsealKeys);
        } finally {
            stub.close();
            await Promise.all([active.stop(), standby.stop()]);
        }
    });

    it("logs in as its service account with the Kubernetes auth method; a role without the snapshot policy fails at snapshot", async () => {
        const api = await startKubernetesApi();
        try {
            const root = { ...restored.server, rootToken: original.rootToken };
            const rule = (p: string) => `path "${p}" {\n  capabilities = ["read"]\n}`;
            await baoApi(root, "PUT", "sys/policies/acl/vault-backup", { policy: rule("sys/storage/raft/snapshot") });
            await baoApi(root, "PUT", "sys/policies/acl/other", { policy: rule("secret/data/*") });
            await baoApi(root, "POST", "sys/auth/kubernetes", { type: "kubernetes" });
            await baoApi(root, "POST", "auth/kubernetes/config", {
                kubernetes_host: api.url,
                kubernetes_ca_cert: api.caCert,
                token_reviewer_jwt: api.reviewerToken,
                disable_local_ca_jwt: true,
            });
            for (const [role, policy] of [
                ["vault-backup", "vault-backup"],
                ["not-backup", "other"],
            ])
                await baoApi(root, "POST", `auth/kubernetes/role/${role}`, {
                    bound_service_account_names: ["vault-backup"],
                    bound_service_account_namespaces: ["vault"],
                    token_policies: [policy],
                    token_ttl: "5m",
                    audience: "vault",
                });
            const folder = secretsFolder();
            const jwt = api.serviceAccountToken({
                namespace: "vault",
                serviceAccount: "vault-backup",
                audiences: ["vault"],
            });
            secrets.push(jwt);
            const jwtFile = folder.write("token", jwt);
            const prefixed = { ...store, prefix: "pod/" };
            try {
                for (const [role, code, step] of [
                    ["vault-backup", 0, undefined],
                    ["not-backup", 1, "snapshot"],
                ] as const) {
                    const job = await runBackupJob({
                        vaultAddress: restored.server.url,
                        vaultToken: "",
                        store: prefixed,
                        key,
                        env: { VAULT_TOKEN_FILE: "", VAULT_AUTH_ROLE: role, VAULT_JWT_FILE: jwtFile },
                    });
                    outputs.push(job.output);
                    assert.equal(job.code, code, job.output);
                    assert.equal(job.logs.at(-1)!.step, step);
                }
            } finally {
                folder.remove();
            }
            assert.equal((await listBackups(prefixed)).length, 1);
            assert.deepEqual(
                api.reviews.map((r) => r.username),
                ["system:serviceaccount:vault:vault-backup", "system:serviceaccount:vault:vault-backup"],
            );
        } finally {
            await api.stop();
        }
    });

    it("overwrites a Vault that holds data when asked, saying what it replaces", async () => {
        const good = (await listBackups(store)).find((b) => !b.key.includes("2099-"))!;
        const result = await restoreVault({
            store,
            key,
            backup: good.key,
            vault: { address: restored.server.url, token: original.rootToken },
            unsealKeys: original.unsealKeys.slice(1),
            overwrite: true,
            restartVault: () => restored.server.restart(),
        });
        assert.ok(result.replaces.includes("auth method kubernetes/"), JSON.stringify(result.replaces));
        await assertVaultAsItWas();
        // The Kubernetes auth method came after the snapshot: it is gone.
        const auths = (await baoApi({ ...restored.server, rootToken: original.rootToken }, "GET", "sys/auth")) as {
            data: object;
        };
        assert.ok(!("kubernetes/" in auths.data));
    });

    it("prints no backup key, S3 secret, Vault token or unseal key in any output", async () => {
        await stopServices();
        const everything = [...outputs, JSON.stringify(plan)].join("\n");
        assert.ok(everything.includes("backup done"), "the outputs were captured");
        for (const secret of [
            key.toString("base64"),
            key.toString("hex"),
            backend.secretAccessKey,
            original.rootToken,
            restored.rootToken,
            ...original.unsealKeys,
            ...restored.unsealKeys,
            ...secrets,
        ]) {
            assert.ok(!everything.includes(secret), "a secret appears in the output");
        }
    });
});
