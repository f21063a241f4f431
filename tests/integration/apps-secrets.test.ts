// The apps' keys with the real engine against OpenBao, configured as the Vault layer configures it: each KV
// secret where the Vault Secrets Operator will read it, readable by its own service's policy and by no other,
// holding the files the service expects; a second up changes nothing; a new member adds only its keys, and the
// others keep theirs; no key in plain text on disk.
import * as assert from "node:assert/strict";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Stack } from "@pulumi/pulumi/automation";
import { type RaftServer, startOpenBaoRaft } from "@peoples-cloud/testkit";
import { storeAppSecrets } from "../../components/apps/secrets";
import { type Engine, projectStack, readTree, tempEngine } from "../helpers/engine";
import { vaultCall, vaultProgram } from "../helpers/vault";

describe("the apps' keys in Vault, with the real engine and OpenBao", function () {
    this.timeout(10 * 60_000);
    let engine: Engine;
    let server: RaftServer;
    let stack: Stack;
    let members = ["ana"];
    let adminToken: string;

    const call = (token: string, method: string, apiPath: string, body?: unknown) =>
        vaultCall(server.url, token, method, apiPath, body);
    /** A token with only this service's policy, as Vault's Kubernetes auth role gives the service. */
    async function serviceToken(service: string): Promise<string> {
        const res = await call(adminToken, "POST", "auth/token/create", { policies: [service], ttl: "10m" });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return (res.body.auth as { client_token: string }).client_token;
    }
    async function files(token: string, apiPath: string): Promise<Record<string, string>> {
        const res = await call(token, "GET", `secret/data/apps/${apiPath}`);
        assert.equal(res.status, 200, `GET ${apiPath}: ${JSON.stringify(res.body.errors)}`);
        return (res.body.data as { data: Record<string, string> }).data;
    }

    before(async () => {
        engine = await tempEngine();
        server = await startOpenBaoRaft("vault-0");
        const program = vaultProgram([server], {
            auditFile: path.join(server.dir, "audit.log"),
            then: ({ operator, adminToken, configuration }) => {
                const parent = new pulumi.ComponentResource("peoples-cloud:test:Apps", "apps");
                const keys = storeAppSecrets(parent, "apps", {
                    operator,
                    token: adminToken,
                    after: [configuration],
                    members,
                    backend: "seaweedfs",
                });
                return { members: keys.members };
            },
        });
        stack = await projectStack(engine, "apps-secrets", program);
    });
    after(async () => {
        await server?.stop();
        engine?.cleanup();
    });

    it("writes each service's files where its policy reads them, and nowhere another service can", async () => {
        const up = await stack.up();
        adminToken = up.outputs.adminToken.value as string;
        const ana = (up.outputs.members.value as Record<string, { secretAccessKey: string; kvToken: string }>).ana;

        const s3 = await serviceToken("storage-s3-api");
        const keys = await files(s3, "storage-s3-api/keys");
        const accessKeys = JSON.parse(keys["access-keys.json"]) as Record<string, string>;
        assert.deepEqual(Object.keys(accessKeys).sort(), ["ana", "storage-kv-api"]);
        assert.equal(accessKeys.ana, ana.secretAccessKey);
        for (const key of ["etag.key", "name.key"]) assert.equal(Buffer.from(keys[key], "base64").length, 32, key);
        const backend = JSON.parse((await files(s3, "storage-s3-api/backend"))["credentials.json"]) as {
            accessKeyId: string;
            secretAccessKey: string;
        };
        const identities = JSON.parse((await files(s3, "storage-s3-api/seaweedfs")).seaweedfs_s3_config) as {
            identities: { credentials: { accessKey: string; secretKey: string }[] }[];
        };
        assert.deepEqual(identities.identities[0].credentials[0], {
            accessKey: backend.accessKeyId,
            secretKey: backend.secretAccessKey,
        });

        const kv = await serviceToken("storage-kv-api");
        const kvFiles = await files(kv, "storage-kv-api/keys");
        assert.deepEqual(JSON.parse(kvFiles["tokens.json"]), { [ana.kvToken]: "ana" });
        assert.deepEqual(JSON.parse(kvFiles["s3-credentials.json"]), {
            accessKeyId: "storage-kv-api",
            secretAccessKey: accessKeys["storage-kv-api"],
        });
        assert.ok(Buffer.from(kvFiles["secret.key"], "base64").length >= 32);
        assert.equal((await call(kv, "GET", "secret/data/apps/storage-s3-api/keys")).status, 403);
        assert.equal((await call(s3, "GET", "secret/data/apps/storage-kv-api/keys")).status, 403);

        const onDisk = readTree(engine.root);
        for (const secret of [ana.secretAccessKey, ana.kvToken, backend.secretAccessKey, keys["name.key"]]) {
            assert.ok(!onDisk.includes(secret), "a key is in plain text on disk");
        }
    });

    it("changes nothing on a second up", async () => {
        const again = await stack.up();
        assert.deepEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"]);
    });

    it("adds a member's keys by config, the others kept", async () => {
        const s3 = await serviceToken("storage-s3-api");
        const before = JSON.parse((await files(s3, "storage-s3-api/keys"))["access-keys.json"]) as Record<
            string,
            string
        >;
        members = ["ana", "ben"];
        const up = await stack.up();
        assert.deepEqual(up.summary.resourceChanges, { create: 2, update: 2, same: up.summary.resourceChanges?.same });
        const after = JSON.parse((await files(s3, "storage-s3-api/keys"))["access-keys.json"]) as Record<
            string,
            string
        >;
        assert.equal(after.ana, before.ana);
        assert.equal(after["storage-kv-api"], before["storage-kv-api"]);
        assert.equal(typeof after.ben, "string");
        const kvKeys = await files(await serviceToken("storage-kv-api"), "storage-kv-api/keys");
        const tokens = JSON.parse(kvKeys["tokens.json"]) as Record<string, string>;
        assert.deepEqual(Object.values(tokens).sort(), ["ana", "ben"]);
    });
});
