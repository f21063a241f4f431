// Vault's configuration graph under mocks: what is written where, which settings are set once and which are
// deleted with their resource, every write made with the admin token, and the root token revoked only after
// all of them. Its behaviour against a real OpenBao through the engine: tests/integration/vault-config.test.ts;
// the policies' effect: tests/integration/vault-policies.test.ts.
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { STORAGE_SERVICES, VaultConfiguration } from "../../components/vault/config";
import { adminPolicy, appPolicy } from "../../components/vault/policies";
import { dependencyRecorder, type RecordedResource, settled, useMocks } from "../helpers/mocks";

const apps = [
    ...STORAGE_SERVICES,
    { name: "photos", namespace: "photos", serviceAccount: "photos", transitKey: false },
];
const server = { name: "vault-0", command: ["vault"] };

async function configure(options: { kubernetes?: { host: string; caCert: string } } = {}) {
    const recorded = await useMocks("family", { values: {}, secretKeys: new Set<string>() }, (r) =>
        r.type.endsWith("vault:AdminToken") ? { token: "test-only-admin-token" } : {},
    );
    const { transformations, after } = dependencyRecorder();
    const config = new VaultConfiguration(
        "vault-config",
        { server, rootToken: pulumi.secret("test-only-root"), sealed: [false], apps, ...options },
        { transformations },
    );
    // 7 engine, auth and audit writes, 2 per transit key, 3 per app, the admin token and the revocation.
    const want = 7 + 2 * 2 + 3 * apps.length + 2;
    const mine = () => recorded.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/vault:"));
    await settled();
    assert.equal(mine().length, want);
    const writes = new Map(
        mine()
            .filter((r) => r.type.endsWith(":Write"))
            .map((r) => [r.inputs.path as string, r]),
    );
    return { config, recorded: mine(), writes, after };
}

const write = (writes: Map<string, RecordedResource>, path: string) => {
    const found = writes.get(path);
    assert.ok(found, `nothing writes ${path}`);
    return found.inputs;
};

describe("vault configuration graph", () => {
    it("mounts KV v2, transit and PKI once, a CA once, and a rotating, undeletable key per storage service", async () => {
        const { writes } = await configure();
        assert.deepEqual(write(writes, "sys/mounts/secret"), {
            ...write(writes, "sys/mounts/secret"),
            data: { type: "kv", options: { version: "2" } },
            once: { read: "sys/mounts", key: "secret/" },
        });
        assert.deepEqual(write(writes, "sys/mounts/transit").once, { read: "sys/mounts", key: "transit/" });
        assert.equal((write(writes, "sys/mounts/pki").data as { type: string }).type, "pki");
        assert.deepEqual(write(writes, "pki/root/generate/internal").once, {
            read: "pki/config/issuers",
            key: "default",
        });
        for (const app of ["storage-s3-api", "storage-kv-api"]) {
            assert.deepEqual(write(writes, `transit/keys/${app}`).data, {
                type: "aes256-gcm96",
                derived: true,
                exportable: false,
            });
            assert.deepEqual(write(writes, `transit/keys/${app}/config`).data, {
                auto_rotate_period: "720h",
                deletion_allowed: false,
                exportable: false,
            });
        }
        assert.ok(!writes.has("transit/keys/photos"), "an app that does not encrypt gets no key");
        // Mounts, keys and the CA hold data: removing them from the program leaves them in Vault.
        for (const kept of ["sys/mounts/secret", "transit/keys/storage-s3-api", "pki/root/generate/internal"]) {
            assert.equal(write(writes, kept).deletePath, undefined, kept);
        }
    });

    it("writes a least-privilege policy, Kubernetes role and PKI role per app, deleted with their resource", async () => {
        const { writes } = await configure();
        for (const app of apps) {
            const policy = write(writes, `sys/policies/acl/${app.name}`);
            assert.deepEqual([policy.data, policy.deletePath], [{ policy: appPolicy(app.name) }, policy.path]);
            const role = write(writes, `auth/kubernetes/role/${app.name}`);
            assert.deepEqual(
                [role.data, role.deletePath],
                [
                    {
                        bound_service_account_names: [app.serviceAccount],
                        bound_service_account_namespaces: [app.namespace],
                        token_policies: [app.name],
                        token_ttl: "1h",
                        audience: "vault",
                    },
                    role.path,
                ],
            );
            const pkiRole = write(writes, `pki/roles/${app.name}`).data as { allowed_domains: string[] };
            assert.deepEqual(pkiRole.allowed_domains, [
                `${app.name}.${app.namespace}.svc`,
                `${app.name}.${app.namespace}.svc.cluster.local`,
            ]);
        }
        assert.deepEqual(write(writes, "sys/auth/kubernetes").once, { read: "sys/auth", key: "kubernetes/" });
        assert.deepEqual(write(writes, "sys/audit/file").data, {
            type: "file",
            options: { file_path: "/vault/audit/audit.log" },
        });
    });

    it("reviews tokens in the cluster by default, or with a given API and CA", async () => {
        assert.deepEqual(write((await configure()).writes, "auth/kubernetes/config").data, {
            kubernetes_host: "https://kubernetes.default.svc",
        });
        const outside = await configure({ kubernetes: { host: "https://k8s.example:6443", caCert: "PEM" } });
        assert.deepEqual(write(outside.writes, "auth/kubernetes/config").data, {
            kubernetes_host: "https://k8s.example:6443",
            kubernetes_ca_cert: "PEM",
            disable_local_ca_jwt: true,
        });
    });

    it("writes everything with the admin token and revokes the root token after all of it", async () => {
        const { config, recorded, writes, after } = await configure();
        const admin = recorded.find((r) => r.type.endsWith(":AdminToken"))!;
        assert.deepEqual([admin.inputs.policy, admin.inputs.periodHours], [adminPolicy(), 768]);
        for (const w of writes.values()) assert.equal(w.inputs.token, "test-only-admin-token", String(w.inputs.path));
        const revocation = recorded.find((r) => r.type.endsWith(":RootRevocation"))!;
        const before = after(revocation.name);
        for (const r of recorded.filter((x) => x !== revocation)) assert.ok(before.has(r.name), `${r.name} after`);
        // Unknown until a real run, but secret already.
        assert.equal(await pulumi.isSecret(config.adminToken), true);
    });
});
