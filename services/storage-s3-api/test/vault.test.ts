// The transit client against a real OpenBao server.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createTransitKey, type OpenBaoServer, startOpenBaoDev } from "@peoples-cloud/testkit";
import { TransitClient, VaultError } from "../src/vault";

describe("transit client (real OpenBao)", function () {
    this.timeout(60_000);
    let bao: OpenBaoServer;
    const token = () => bao.rootToken ?? "";

    before(async () => {
        bao = await startOpenBaoDev();
        await createTransitKey(bao, "storage-s3-api");
    });
    after(async () => bao?.stop());

    it("wraps a fresh data key per object and unwraps it only with its object id", async () => {
        const client = new TransitClient({ address: bao.url, token, keyName: "storage-s3-api" });
        const objectId = randomBytes(16);
        const key = await client.newDataKey(objectId);
        assert.equal(key.plaintext.length, 32);
        assert.match(key.wrapped, /^vault:v1:/);
        assert.ok(!key.wrapped.includes(key.plaintext.toString("base64")));

        const reader = new TransitClient({ address: bao.url, token, keyName: "storage-s3-api" });
        assert.deepEqual(await reader.unwrap(key.wrapped, objectId), key.plaintext);
        await assert.rejects(reader.unwrap(key.wrapped, randomBytes(16)), VaultError);
        assert.notDeepEqual((await client.newDataKey(objectId)).plaintext, key.plaintext);
    });

    it("makes one Vault call per new key and none for a cached unwrap", async () => {
        const client = new TransitClient({ address: bao.url, token, keyName: "storage-s3-api" });
        const objectId = randomBytes(16);
        const key = await client.newDataKey(objectId);
        assert.equal(client.calls, 1);
        for (let i = 0; i < 3; i++) assert.deepEqual(await client.unwrap(key.wrapped, objectId), key.plaintext);
        assert.equal(client.calls, 1);
    });

    it("reports a refused token without key material", async () => {
        const client = new TransitClient({ address: bao.url, token: () => "not-a-token", keyName: "storage-s3-api" });
        await assert.rejects(client.newDataKey(randomBytes(16)), (err: unknown) => {
            assert.ok(err instanceof VaultError);
            assert.equal(err.status, 403);
            return true;
        });
    });
});
