// The Vault layer's policies (components/vault/policies.ts) loaded into a real OpenBao and used through its
// HTTP API: a token with one app's policy uses its own transit key, KV folder and PKI role and is refused
// another app's and `sys/`; the admin policy runs day-2 work and is refused what only root may do. The backup
// layer's vault-backup policy, on an OpenBao with raft storage: a snapshot and its own KV folder, nothing else.
import * as assert from "node:assert/strict";
import { vaultBackupPolicy } from "../../components/backup/vault-manifests";
import { adminPolicy, appPolicy } from "../../components/vault/policies";
import {
    baoApi,
    initialiseOpenBao,
    type OpenBaoServer,
    type RaftServer,
    startOpenBaoDev,
    startOpenBaoRaft,
} from "@peoples-cloud/testkit";

const apps = ["storage-s3-api", "storage-kv-api"];

describe("vault policies in a real OpenBao", function () {
    this.timeout(60_000);
    let bao: OpenBaoServer;
    const tokens: Record<string, string> = {};

    /** The status of a request made with a token; the body only when it succeeded. */
    async function call(token: string, method: string, path: string, body?: unknown) {
        const res = await fetch(`${bao.url}/v1/${path}`, {
            method,
            headers: { "X-Vault-Token": token },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, body: res.ok && res.status !== 204 ? ((await res.json()) as unknown) : undefined };
    }

    before(async () => {
        bao = await startOpenBaoDev();
        // What the configuration mounts (the dev server has KV v2 at secret/ already).
        await baoApi(bao, "POST", "sys/mounts/transit", { type: "transit" });
        await baoApi(bao, "POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
        await baoApi(bao, "POST", "pki/root/generate/internal", {
            common_name: "test CA",
            key_type: "ec",
            ttl: "8760h",
        });
        for (const app of apps) {
            await baoApi(bao, "POST", `transit/keys/${app}`, { type: "aes256-gcm96" });
            await baoApi(bao, "POST", `secret/data/apps/${app}/config`, { data: { owner: app } });
            await baoApi(bao, "POST", `pki/roles/${app}`, {
                allowed_domains: [`${app}.apps.svc`],
                allow_bare_domains: true,
                key_type: "ec",
            });
            await baoApi(bao, "PUT", `sys/policies/acl/${app}`, { policy: appPolicy(app) });
        }
        await baoApi(bao, "PUT", "sys/policies/acl/admin", { policy: adminPolicy() });
        for (const name of [...apps, "admin"]) {
            const created = (await baoApi(bao, "POST", "auth/token/create", { policies: [name] })) as {
                auth: { client_token: string };
            };
            tokens[name] = created.auth.client_token;
        }
    });
    after(() => bao?.stop());

    it("lets an app use its own transit key, KV folder and PKI role", async () => {
        const token = tokens["storage-s3-api"];
        const plaintext = Buffer.from("hello").toString("base64");
        const sealed = await call(token, "POST", "transit/encrypt/storage-s3-api", { plaintext });
        assert.equal(sealed.status, 200);
        const ciphertext = (sealed.body as { data: { ciphertext: string } }).data.ciphertext;
        const opened = await call(token, "POST", "transit/decrypt/storage-s3-api", { ciphertext });
        assert.equal((opened.body as { data: { plaintext: string } }).data.plaintext, plaintext);
        assert.equal((await call(token, "POST", "transit/rewrap/storage-s3-api", { ciphertext })).status, 200);
        assert.equal((await call(token, "POST", "transit/datakey/wrapped/storage-s3-api", {})).status, 200);
        const own = await call(token, "GET", "secret/data/apps/storage-s3-api/config");
        assert.deepEqual((own.body as { data: { data: unknown } }).data.data, { owner: "storage-s3-api" });
        const cert = await call(token, "POST", "pki/issue/storage-s3-api", { common_name: "storage-s3-api.apps.svc" });
        assert.equal(cert.status, 200);
    });

    it("refuses an app another app's key, folder and role, its own key's export, rotation and deletion, and sys/", async () => {
        const token = tokens["storage-s3-api"];
        const refused: [string, string, unknown?][] = [
            ["POST", "transit/encrypt/storage-kv-api", { plaintext: "aGk=" }],
            ["POST", "transit/decrypt/storage-kv-api", { ciphertext: "vault:v1:AAAA" }],
            ["GET", "secret/data/apps/storage-kv-api/config"],
            ["POST", "pki/issue/storage-kv-api", { common_name: "storage-kv-api.apps.svc" }],
            ["POST", "transit/keys/storage-s3-api/rotate", {}],
            ["DELETE", "transit/keys/storage-s3-api"],
            ["GET", "transit/export/encryption-key/storage-s3-api"],
            ["POST", "secret/data/apps/storage-s3-api/config", { data: { owner: "someone else" } }],
            ["GET", "sys/mounts"],
            ["GET", "sys/policies/acl"],
            ["PUT", "sys/policies/acl/storage-s3-api", { policy: 'path "*" { capabilities = ["sudo"] }' }],
            ["POST", "sys/audit/file", { type: "file", options: { file_path: "/dev/null" } }],
        ];
        for (const [method, path, body] of refused) {
            assert.equal((await call(token, method, path, body)).status, 403, `${method} ${path}`);
        }
    });

    it("lets the admin token do day-2 work and nothing only root may do", async () => {
        const token = tokens.admin;
        assert.equal((await call(token, "GET", "sys/mounts")).status, 200);
        assert.equal(
            (
                await call(token, "PUT", "sys/policies/acl/reader", {
                    policy: 'path "secret/*" { capabilities = ["read"] }',
                })
            ).status,
            204,
        );
        assert.equal(
            (await call(token, "POST", "sys/mounts/kv-extra", { type: "kv", options: { version: "2" } })).status,
            204,
        );
        assert.ok((await call(token, "POST", "transit/keys/new-service", { type: "aes256-gcm96" })).status < 300);
        assert.equal((await call(token, "POST", "transit/keys/storage-s3-api/rotate", {})).status, 200);
        assert.equal((await call(token, "POST", "auth/token/create", { policies: ["storage-s3-api"] })).status, 200);
        assert.equal((await call(token, "POST", "auth/token/create", { policies: ["root"] })).status, 400);
        for (const [method, path] of [
            // (Generating a root token and rekeying need the unseal keys, whatever the token.)
            ["GET", "sys/raw/core"],
            ["POST", "sys/storage/raft/remove-peer"],
            ["PUT", "sys/seal"],
        ] as const) {
            assert.equal(
                (await call(token, method, path, method === "GET" ? undefined : {})).status,
                403,
                `${method} ${path}`,
            );
        }
    });
});

describe("the vault-backup policy in a real OpenBao with raft storage", function () {
    this.timeout(60_000);
    let bao: RaftServer;
    let token: string;

    const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${bao.url}/v1/${path}`, {
            method,
            headers: { "X-Vault-Token": token },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    };

    before(async () => {
        bao = await startOpenBaoRaft();
        await initialiseOpenBao(bao, 1, 1);
        await baoApi(bao, "POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
        // A new KV v2 mount upgrades itself for a moment before it takes writes.
        for (let i = 0; ; i++) {
            const written = await baoApi(bao, "POST", "secret/data/apps/vault-backup/key", {
                data: { "backup.key": "a2V5" },
            }).then(
                () => true,
                (err: Error) =>
                    /Upgrading from non-versioned/.test(err.message) && i < 50 ? false : Promise.reject(err),
            );
            if (written) break;
            await new Promise((r) => setTimeout(r, 200));
        }
        await baoApi(bao, "POST", "secret/data/apps/storage-s3-api/keys", { data: { "name.key": "c2VjcmV0" } });
        await baoApi(bao, "PUT", "sys/policies/acl/vault-backup", { policy: vaultBackupPolicy() });
        const created = (await baoApi(bao, "POST", "auth/token/create", { policies: ["vault-backup"] })) as {
            auth: { client_token: string };
        };
        token = created.auth.client_token;
    });
    after(() => bao?.stop());

    it("takes a raft snapshot and reads its own KV folder", async () => {
        const snapshot = await call("GET", "sys/storage/raft/snapshot");
        assert.equal(snapshot.status, 200);
        // A gzip'd tar, as the job checks it.
        assert.ok(snapshot.body.length > 100 && snapshot.body[0] === 0x1f && snapshot.body[1] === 0x8b);
        const own = await call("GET", "secret/data/apps/vault-backup/key");
        assert.equal(own.status, 200);
        assert.deepEqual((JSON.parse(own.body.toString()) as { data: { data: unknown } }).data.data, {
            "backup.key": "a2V5",
        });
    });

    it("is refused another app's secret, a forced restore and the rest of sys/", async () => {
        const snapshot = (await call("GET", "sys/storage/raft/snapshot")).body;
        for (const [method, path, body] of [
            ["GET", "secret/data/apps/storage-s3-api/keys"],
            ["GET", "secret/metadata/apps/storage-s3-api/keys"],
            ["POST", "secret/data/apps/vault-backup/key", { data: { "backup.key": "b3RoZXI=" } }],
            ["POST", "sys/storage/raft/snapshot-force", snapshot],
            ["POST", "sys/storage/raft/snapshot", snapshot],
            ["GET", "sys/storage/raft/configuration"],
            ["GET", "sys/mounts"],
            ["PUT", "sys/policies/acl/vault-backup", { policy: 'path "*" { capabilities = ["sudo"] }' }],
        ] as const) {
            const res = await fetch(`${bao.url}/v1/${path}`, {
                method,
                headers: { "X-Vault-Token": token },
                body:
                    body === undefined
                        ? undefined
                        : Buffer.isBuffer(body)
                          ? new Uint8Array(body)
                          : JSON.stringify(body),
            });
            assert.equal(res.status, 403, `${method} ${path}`);
        }
    });
});
