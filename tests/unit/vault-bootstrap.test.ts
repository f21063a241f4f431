// The Vault bootstrap's resource graph under mocks; its behaviour against real OpenBao is in
// tests/integration/vault.test.ts.
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { VaultBootstrap } from "../../components/vault/bootstrap";
import { settled, useMocks } from "../helpers/mocks";

const server = (name: string) => ({ name, command: ["kubectl", "exec", "-i", "-n", "vault", name, "--", "vault"] });

describe("vault bootstrap graph", () => {
    it("initialises the first server once and unseals every server, the others joining the first", async () => {
        const recorded = await useMocks("dev", { values: {}, secretKeys: new Set<string>() });
        const vault = new VaultBootstrap("vault", {
            servers: ["vault-0", "vault-1", "vault-2"].map(server),
            joinAddress: "https://vault-0.vault-internal:8200",
            keyShares: 5,
            keyThreshold: 3,
        });
        await settled();
        // Unknown during a preview, but secret already.
        assert.equal(await pulumi.isSecret(vault.rootToken), true);
        assert.equal(await pulumi.isSecret(vault.unsealKeys), true);
        const byType = (type: string) => recorded.filter((r) => r.type === `pulumi-nodejs:dynamic/vault:${type}`);
        const [init] = byType("Initialization");
        assert.equal(byType("Initialization").length, 1);
        assert.deepEqual([init.inputs.keyShares, init.inputs.keyThreshold], [5, 3]);
        assert.equal((init.inputs.operator as { name: string }).name, "vault-0");
        const unseals = byType("Unseal");
        assert.deepEqual(
            unseals.map((u) => [u.name, u.inputs.joinAddress]),
            [
                ["vault-unseal-vault-0", undefined],
                ["vault-unseal-vault-1", "https://vault-0.vault-internal:8200"],
                ["vault-unseal-vault-2", "https://vault-0.vault-internal:8200"],
            ],
        );
        assert.ok(unseals.every((u) => u.inputs.keyThreshold === 3));
    });

    it("refuses an empty server list", async () => {
        await useMocks("dev", { values: {}, secretKeys: new Set<string>() });
        assert.throws(
            () => new VaultBootstrap("vault", { servers: [], joinAddress: "", keyShares: 1, keyThreshold: 1 }),
            /vault: at least one Vault server is needed/,
        );
    });
});
