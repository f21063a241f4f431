// Vault's configuration as code under mocks: the engines, one transit key and least-privilege policy and
// Kubernetes auth role per app, the admin policy and its token (secret), the audit device — all through the
// given provider. (The policies' effect is tested in a real OpenBao: tests/integration/vault-policies.test.ts.)
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { VaultConfiguration } from "../../components/vault/config";
import { adminPolicy, appPolicy } from "../../components/vault/policies";
import { useMocks } from "../helpers/mocks";

const apps = [
    { name: "storage-s3-api", namespace: "storage", serviceAccount: "storage-s3-api", transitKey: true },
    { name: "storage-kv-api", namespace: "storage", serviceAccount: "storage-kv-api", transitKey: true },
    { name: "photos", namespace: "photos", serviceAccount: "photos", transitKey: false },
];

describe("vault configuration", () => {
    it("mounts KV v2, transit and PKI, keys and roles per app, an admin policy and token, and an audit device", async () => {
        const recorded = await useMocks("family", { values: {}, secretKeys: new Set<string>() }, (r) =>
            r.type === "vault:index/token:Token" ? { clientToken: "test-only-admin-token" } : {},
        );
        const provider = new vault.Provider("vault", { address: "https://vault.example:8200", token: "t" });
        const config = new VaultConfiguration("vault-config", { provider, apps });
        for (let i = 0; i < 200 && recorded.length < 21; i++) await new Promise((r) => setTimeout(r, 20));
        // In name order: registrations that wait on outputs arrive in any order.
        const of = (type: string) =>
            recorded
                .filter((r) => r.type === type)
                .sort((a, b) => a.name.localeCompare(b.name))
                .map((r) => r.inputs);

        assert.deepEqual(
            of("vault:index/mount:Mount").map((m) => [m.path, m.type, m.options]),
            [
                ["secret", "kv", { version: "2" }],
                ["pki", "pki", undefined],
                ["transit", "transit", undefined],
            ],
        );
        const keys = of("vault:transit/secretBackendKey:SecretBackendKey");
        assert.deepEqual(
            keys.map((k) => [k.name, k.type, k.autoRotatePeriod, k.deletionAllowed, k.exportable]),
            [
                ["storage-kv-api", "aes256-gcm96", 30 * 24 * 3600, false, false],
                ["storage-s3-api", "aes256-gcm96", 30 * 24 * 3600, false, false],
            ],
        );
        const policies = of("vault:index/policy:Policy");
        assert.deepEqual(
            policies.map((p) => [p.name, p.policy]),
            [["admin", adminPolicy()], ...["photos", "storage-kv-api", "storage-s3-api"].map((a) => [a, appPolicy(a)])],
        );
        const roles = of("vault:kubernetes/authBackendRole:AuthBackendRole");
        assert.deepEqual(
            roles.map((r) => [
                r.roleName,
                r.boundServiceAccountNames,
                r.boundServiceAccountNamespaces,
                r.tokenPolicies,
            ]),
            [...apps]
                .sort((a, b) => a.name.localeCompare(b.name))
                .map((a) => [a.name, [a.serviceAccount], [a.namespace], [a.name]]),
        );
        assert.deepEqual(
            of("vault:kubernetes/authBackendConfig:AuthBackendConfig")[0].kubernetesHost,
            "https://kubernetes.default.svc",
        );
        assert.deepEqual(of("vault:index/audit:Audit")[0].options, { file_path: "/vault/audit/audit.log" });
        assert.equal(of("vault:pkiSecret/secretBackendRole:SecretBackendRole").length, apps.length);
        const [token] = of("vault:index/token:Token");
        assert.deepEqual([token.policies, token.noParent, token.period], [["admin"], true, "768h"]);
        assert.equal(await pulumi.isSecret(config.adminToken), true);
    });
});
