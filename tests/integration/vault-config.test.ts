// The Vault layer's bootstrap and configuration with the real engine against an uninitialised OpenBao raft
// server, through the same operator code path as in a cluster (the Vault CLI, here a local process): a
// refused write names its server and setting and the next up resumes; the engines, keys, policies, roles
// and audit device exist; an app's token uses its own key and is refused another's and `sys/`; the root token is revoked and nothing secret is in plain text; a second up changes
// nothing; after a restart (sealed) the next up unseals it and leaves the configuration as it was.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Stack, UpResult } from "@pulumi/pulumi/automation";
import { type Engine, projectStack, readTree, tempEngine } from "../helpers/engine";
import { type RaftServer, startOpenBaoRaft } from "@peoples-cloud/testkit";
import { vaultCall, vaultProgram } from "../helpers/vault";

describe("vault configuration with the real engine and OpenBao", function () {
    this.timeout(10 * 60_000);
    let engine: Engine;
    let server: RaftServer;
    let stack: Stack;
    let first: UpResult;
    let adminToken: string;

    const call = (token: string, method: string, apiPath: string, body?: unknown) =>
        vaultCall<{ data?: Record<string, unknown> }>(server.url, token, method, apiPath, body);
    const data = async (apiPath: string) => {
        const res = await call(adminToken, "GET", apiPath);
        assert.equal(res.status, 200, `GET ${apiPath}`);
        return res.body.data ?? {};
    };

    let auditFile: string;

    before(async () => {
        engine = await tempEngine();
        server = await startOpenBaoRaft("vault-0");
        // A folder in the log file's place until the first up has failed there.
        auditFile = path.join(server.dir, "audit.log");
        fs.mkdirSync(auditFile);
        stack = await projectStack(engine, "vault-config", vaultProgram([server], { auditFile }));
    });
    after(async () => {
        await server?.stop();
        engine?.cleanup();
    });

    it("fails naming the server and setting when a write is refused, and the next up resumes from there", async () => {
        await assert.rejects(stack.up(), (err: Error) => {
            assert.match(err.message, /vault write sys\/audit\/file on vault-0 failed: .*is a directory/);
            return true;
        });
        fs.rmdirSync(auditFile);
        first = await stack.up();
        adminToken = first.outputs.adminToken.value as string;
        // What the failed run made stays; the rest is created, the revocation last; nothing twice.
        const { create = 0, same = 0, ...other } = first.summary.resourceChanges ?? {};
        assert.deepEqual([create + same, other], [24, {}]);
        assert.ok(create >= 2 && same >= 6, `created ${create}, kept ${same}`);
    });

    it("mounts KV v2, transit and PKI, with a rotating, undeletable key per storage service", async () => {
        const mounts = await data("sys/mounts");
        const kv = mounts["secret/"] as { type: string; options: { version: string } };
        assert.deepEqual([kv.type, kv.options.version], ["kv", "2"]);
        assert.equal((mounts["transit/"] as { type: string }).type, "transit");
        assert.equal((mounts["pki/"] as { type: string }).type, "pki");
        for (const app of ["storage-s3-api", "storage-kv-api"]) {
            const key = await data(`transit/keys/${app}`);
            assert.deepEqual(
                [key.type, key.derived, key.auto_rotate_period, key.deletion_allowed, key.exportable],
                ["aes256-gcm96", true, 30 * 24 * 3600, false, false],
                app,
            );
        }
        assert.ok(String((await data("pki/cert/ca")).certificate).includes("BEGIN CERTIFICATE"), "PKI root");
    });

    it("writes a policy, Kubernetes role and PKI role per app, the admin policy and a file audit device", async () => {
        const policies = (await call(adminToken, "LIST", "sys/policies/acl")).body.data?.keys as string[];
        assert.deepEqual(policies.filter((p) => !["default", "root"].includes(p)).sort(), [
            "admin",
            "storage-kv-api",
            "storage-s3-api",
        ]);
        const role = await data("auth/kubernetes/role/storage-s3-api");
        assert.deepEqual(
            [role.bound_service_account_names, role.bound_service_account_namespaces, role.token_policies],
            [["storage-s3-api"], ["storage"], ["storage-s3-api"]],
        );
        assert.equal((await data("auth/kubernetes/config")).kubernetes_host, "https://kubernetes.test:6443");
        assert.deepEqual((await data("pki/roles/storage-kv-api")).allowed_domains, [
            "storage-kv-api.storage.svc",
            "storage-kv-api.storage.svc.cluster.local",
        ]);
        const audit = await data("sys/audit");
        assert.equal((audit["file/"] as { type: string }).type, "file");
        assert.ok(fs.statSync(auditFile).size > 0, "the audit device writes");
    });

    it("lets an app's token use its own key and refuses it another's and sys/", async () => {
        const created = await call(adminToken, "POST", "auth/token/create", { policies: ["storage-s3-api"] });
        assert.equal(created.status, 200, "the admin token creates app tokens");
        const appToken = (created.body as { auth: { client_token: string } }).auth.client_token;
        // The keys are derived: each encryption names its context (storage-s3-api's is the object's id).
        const request = {
            plaintext: Buffer.from("hello").toString("base64"),
            context: randomBytes(16).toString("base64"),
        };
        assert.equal((await call(appToken, "POST", "transit/encrypt/storage-s3-api", request)).status, 200);
        assert.equal((await call(appToken, "POST", "transit/encrypt/storage-kv-api", request)).status, 403);
        assert.equal((await call(appToken, "GET", "sys/mounts")).status, 403);
        assert.equal((await call(appToken, "PUT", "sys/policies/acl/storage-s3-api", { policy: "" })).status, 403);
    });

    it("revokes the root token and keeps every secret out of the state, the engine's output and the logs", async () => {
        const rootToken = first.outputs.rootToken.value as string;
        assert.equal((await call(rootToken, "GET", "auth/token/lookup-self")).status, 403, "root revoked");
        assert.equal((await call(adminToken, "GET", "auth/token/lookup-self")).status, 200, "admin token lives");
        assert.equal(first.outputs.adminToken.secret, true);
        const onDisk = readTree(engine.root);
        assert.match(onDisk, /"type":\s*"pulumi-nodejs:dynamic\/vault:AdminToken"/, "the state was not read");
        const secrets = [rootToken, adminToken, ...(first.outputs.unsealKeys.value as string[])];
        const audit = fs.readFileSync(auditFile, "utf8");
        for (const secret of secrets) {
            assert.ok(!onDisk.includes(secret), "a token or key is in plain text in the state");
            assert.ok(!first.stdout.includes(secret) && !first.stderr.includes(secret), "printed by the engine");
            assert.ok(!server.log().includes(secret) && !audit.includes(secret), "logged by OpenBao");
        }
    });

    it("changes nothing on a second up", async () => {
        const again = await stack.up();
        assert.deepEqual(again.summary.resourceChanges, { same: 24 });
        assert.equal(again.outputs.adminToken.value, adminToken);
    });

    it("finds on refresh a policy deleted and a role widened by hand, and the next up writes them back", async () => {
        const unchanged = await stack.refresh();
        assert.deepEqual(unchanged.summary.resourceChanges, { same: 24 }, "drift where there is none");

        assert.equal((await call(adminToken, "DELETE", "sys/policies/acl/storage-kv-api")).status, 204);
        const anyone = { bound_service_account_names: ["*"], bound_service_account_namespaces: ["*"] };
        assert.equal((await call(adminToken, "POST", "auth/kubernetes/role/storage-s3-api", anyone)).status, 204);
        const refreshed = await stack.refresh();
        assert.deepEqual(refreshed.summary.resourceChanges, { same: 22, delete: 1, update: 1 });
        const onDisk = readTree(engine.root);
        for (const secret of [adminToken, ...(first.outputs.unsealKeys.value as string[])]) {
            assert.ok(!onDisk.includes(secret), "a token or key is in plain text in the state after refresh");
            assert.ok(!refreshed.stdout.includes(secret) && !refreshed.stderr.includes(secret), "printed");
        }

        const mended = await stack.up();
        assert.deepEqual(mended.summary.resourceChanges, { same: 22, create: 1, update: 1 });
        assert.match(String((await data("sys/policies/acl/storage-kv-api")).policy), /storage-kv-api/);
        const role = await data("auth/kubernetes/role/storage-s3-api");
        assert.deepEqual(role.bound_service_account_names, ["storage-s3-api"]);
        assert.deepEqual(role.bound_service_account_namespaces, ["storage"]);
    });

    it("refuses a refresh while sealed, unseals a restarted server on the next up and leaves the configuration as it is", async () => {
        await server.restart();
        assert.equal((await fetch(`${server.url}/v1/sys/health`)).status, 503, "restarted sealed");
        await assert.rejects(stack.refresh(), /vault read \S+ on vault-0 failed: .*sealed/i);
        const healed = await stack.up();
        const { update, ...rest } = healed.summary.resourceChanges ?? {};
        assert.equal(update, 1, "only the unseal ran");
        assert.deepEqual(Object.keys(rest), ["same"]);
        assert.equal((await fetch(`${server.url}/v1/sys/health`)).status, 200);
        assert.equal((await data("transit/keys/storage-s3-api")).deletion_allowed, false);
    });
});
