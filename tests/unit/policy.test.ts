import * as assert from "node:assert/strict";
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { policies } from "../../policy/rules";
import { firewallNoClusterPortsToInternet, firewallSshNotOpenToWorld } from "../../policy/rules/firewall";
import { controlPlaneSpread, hetznerServersLabelled } from "../../policy/rules/hetzner";
import { k3sSecretsEncryption } from "../../policy/rules/k3s";
import { helmChartsPinned, imagesPinned } from "../../policy/rules/pinning";
import { noPlaintextSecrets } from "../../policy/rules/secrets";
import { vaultProviderVerifiesTls, vaultRaftReplicas } from "../../policy/rules/vault";
import { workloadsBoundedResources, workloadsNonRoot, workloadsReadOnlyRoot } from "../../policy/rules/workloads";
import { policyConfig, resourceViolations, ruleSettings, stackViolations, type TestResource } from "../helpers/policy";
import { programResources } from "../helpers/program";

const firewall = (port: string, sourceIps: string[], protocol = "tcp"): TestResource => ({
    type: "hcloud:index/firewall:Firewall",
    props: { rules: [{ direction: "in", protocol, port, sourceIps }] },
});

/** A K3s manifest as components/foundation/layer.ts writes it: a RemoteScript with the YAML on stdin. */
const k3sManifest = (chart: Record<string, unknown>): TestResource => ({
    type: "pulumi-nodejs:dynamic/infra:RemoteScript",
    props: {
        env: { K3S_MANIFEST: "peoples-cloud-test" },
        stdin: `kind: Namespace\napiVersion: v1\nmetadata: {name: x}\n---\n${JSON.stringify({
            apiVersion: "helm.cattle.io/v1",
            kind: "HelmChart",
            metadata: { name: "x", namespace: "kube-system" },
            spec: chart,
        })}\n`,
    },
});
const pinnedImage = { repository: "quay.io/jetstack/cert-manager-controller", tag: "v1.19.6" };

const container = (overrides: Record<string, unknown> = {}) => ({
    name: "app",
    image: "ghcr.io/peoples-cloud/storage-s3-api:0.1.0",
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } },
    securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
    ...overrides,
});
const deployment = (c: Record<string, unknown>): TestResource => ({
    type: "kubernetes:apps/v1:Deployment",
    props: { spec: { template: { spec: { containers: [c] } } } },
    name: "storage",
});
/** A Deployment inside a K3s manifest, as the apps layer writes its workloads. */
const manifestDeployment = (c: Record<string, unknown>): TestResource => ({
    type: "pulumi-nodejs:dynamic/infra:RemoteScript",
    name: "apps-storage-services",
    props: {
        env: { K3S_MANIFEST: "peoples-cloud-storage-services" },
        stdin: `${JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { name: "app" }, spec: {} })}\n---\n${JSON.stringify(
            {
                apiVersion: "apps/v1",
                kind: "Deployment",
                metadata: { name: "app", namespace: "storage" },
                spec: { template: { spec: { containers: [c] } } },
            },
        )}\n`,
    },
});
const cronJob = (c: Record<string, unknown>): TestResource => ({
    type: "kubernetes:batch/v1:CronJob",
    props: { spec: { jobTemplate: { spec: { template: { spec: { containers: [c] } } } } } },
});

interface RuleCase {
    policy: ResourceValidationPolicy;
    passes: TestResource[];
    fails: [TestResource, RegExp][];
    config?: Record<string, unknown>;
}

const cases: RuleCase[] = [
    {
        policy: firewallNoClusterPortsToInternet,
        passes: [
            firewall("6443", ["10.99.0.0/24"]),
            firewall("443", ["0.0.0.0/0", "::/0"]),
            firewall("51820", ["0.0.0.0/0"], "udp"),
        ],
        fails: [
            [firewall("6443", ["0.0.0.0/0"]), /K3s API \(6443\)/],
            [firewall("2379-2380", ["::/0"]), /etcd/],
            [firewall("10000-11000", ["0.0.0.0/0"]), /kubelet \(10250\)/],
            [firewall("8201", ["0.0.0.0/0"]), /Vault \(8200-8201\)/],
            [firewall("any", ["0.0.0.0/0"]), /K3s API/],
        ],
    },
    {
        policy: firewallSshNotOpenToWorld,
        passes: [firewall("22", ["203.0.113.0/24"]), firewall("443", ["0.0.0.0/0"])],
        fails: [[firewall("22", ["0.0.0.0/0", "::/0"]), /SSH \(22\)/]],
    },
    {
        policy: helmChartsPinned,
        passes: [
            { type: "kubernetes:helm.sh/v3:Release", props: { chart: "cert-manager", version: "v1.16.2" } },
            { type: "kubernetes:helm.cattle.io/v1:HelmChart", props: { spec: { chart: "vault", version: "0.29.1" } } },
            k3sManifest({
                chart: "cert-manager",
                version: "v1.19.6",
                valuesContent: JSON.stringify({
                    image: pinnedImage,
                    webhook: { image: { ...pinnedImage, tag: undefined, digest: `sha256:${"b".repeat(64)}` } },
                }),
            }),
            // Another script's stdin, unknown during a preview, is not read.
            { type: "pulumi-nodejs:dynamic/infra:RemoteScript", props: { env: {}, stdin: undefined } },
        ],
        fails: [
            [
                k3sManifest({ chart: "cert-manager", version: "1.19" }),
                /'cert-manager' is not pinned to an exact version \(got '1\.19'\)/,
            ],
            [
                k3sManifest({
                    chart: "cert-manager",
                    version: "v1.19.6",
                    valuesContent: JSON.stringify({
                        image: pinnedImage,
                        cainjector: { image: { repository: "quay.io/jetstack/cert-manager-cainjector" } },
                    }),
                }),
                /leaves image 'quay\.io\/jetstack\/cert-manager-cainjector' unpinned/,
            ],
            [
                k3sManifest({ chart: "x", version: "1.0.0", valuesContent: "image: {repository: r, tag: latest}" }),
                /image 'r' unpinned/,
            ],
            [
                { type: "kubernetes:helm.sh/v3:Release", props: { chart: "cert-manager" } },
                /'cert-manager' is not pinned/,
            ],
            [{ type: "kubernetes:helm.sh/v4:Chart", props: { chart: "traefik", version: "^34.0.0" } }, /'\^34\.0\.0'/],
            [
                { type: "kubernetes:helm.cattle.io/v1:HelmChart", props: { spec: { chart: "vault", version: "0.x" } } },
                /vault/,
            ],
        ],
    },
    {
        policy: imagesPinned,
        passes: [
            deployment(container()),
            deployment(container({ image: `registry.local:5000/app@sha256:${"a".repeat(64)}` })),
        ],
        fails: [
            [deployment(container({ image: "nginx" })), /unpinned image 'nginx'/],
            [cronJob(container({ image: "nginx:latest" })), /nginx:latest/],
            [deployment(container({ image: "registry.local:5000/app" })), /registry\.local:5000\/app/],
            [
                manifestDeployment(container({ image: "nginx:latest" })),
                /Deployment\/app: container 'app' uses an unpinned/,
            ],
        ],
    },
    {
        policy: workloadsBoundedResources,
        passes: [deployment(container())],
        fails: [
            [
                deployment(container({ resources: undefined })),
                /requests\.cpu, requests\.memory, limits\.cpu, limits\.memory/,
            ],
            [deployment(container({ resources: { requests: { cpu: "1", memory: "1Gi" } } })), /limits\.cpu/],
            [manifestDeployment(container({ resources: undefined })), /Deployment\/app: container 'app' has no/],
        ],
    },
    {
        policy: workloadsNonRoot,
        passes: [deployment(container()), manifestDeployment(container())],
        fails: [
            [deployment(container({ securityContext: { allowPrivilegeEscalation: false } })), /runAsNonRoot/],
            [
                manifestDeployment(container({ securityContext: {} })),
                /Deployment\/app: container 'app' does not set runAsNonRoot/,
            ],
            [deployment(container({ securityContext: { runAsNonRoot: true } })), /allowPrivilegeEscalation/],
        ],
    },
    {
        policy: workloadsReadOnlyRoot,
        passes: [
            deployment(container()),
            deployment(container({ securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false } })),
        ],
        config: { writableContainers: ["storage/app"] },
        fails: [
            [cronJob(container({ securityContext: {} })), /writable root filesystem/],
            [
                manifestDeployment(container({ securityContext: {} })),
                /Deployment\/app: container 'app' has a writable root/,
            ],
        ],
    },
    {
        policy: noPlaintextSecrets,
        passes: [
            { type: "kubernetes:core/v1:ConfigMap", props: { data: { "config.yaml": "listen: :8080" } } },
            {
                type: "command:remote:Command",
                props: { create: "sh /tmp/install.sh", stdin: "-----BEGIN PRIVATE KEY-----" },
            },
            {
                type: "pulumi-nodejs:dynamic/infra:RemoteScript",
                props: { script: "cat >/etc/rancher/k3s/cluster-token", stdin: "-----BEGIN PRIVATE KEY-----" },
            },
            deployment(container({ env: [{ name: "TOKEN", valueFrom: { secretKeyRef: { name: "s", key: "t" } } }] })),
        ],
        fails: [
            [
                {
                    type: "kubernetes:core/v1:ConfigMap",
                    props: { data: { key: "-----BEGIN OPENSSH PRIVATE KEY-----\nx" } },
                },
                /data\.key holds a private key/,
            ],
            [
                manifestDeployment(
                    container({ env: [{ name: "VAULT_TOKEN", value: "hvs.CAESIJ1xvqP4Fh2l9bNnR5aQ" }] }),
                ),
                /Deployment\/app container app env VAULT_TOKEN holds a Vault token/,
            ],
            [
                {
                    type: "command:remote:Command",
                    props: { environment: { VAULT_TOKEN: "hvs.CAESIJ1xvqP4Fh2l9bNnR5aQ" } },
                },
                /environment\.VAULT_TOKEN holds a Vault token/,
            ],
            [
                {
                    type: "command:local:Command",
                    props: { create: "mc alias set s3 https://id:secret@s3.example.org" },
                },
                /create holds credentials in a URL/,
            ],
            [deployment(container({ env: [{ name: "DB", value: "postgres://app:pw@db:5432/app" }] })), /env DB/],
            [
                {
                    type: "pulumi-nodejs:dynamic/infra:RemoteScript",
                    props: { env: { VAULT_TOKEN: "hvs.CAESIJ1xvqP4Fh2l9bNnR5aQ" }, stdin: "" },
                },
                /env\.VAULT_TOKEN holds a Vault token/,
            ],
        ],
    },
    {
        policy: vaultProviderVerifiesTls,
        passes: [{ type: "pulumi:providers:vault", props: { address: "https://vault:8200", skipTlsVerify: false } }],
        fails: [[{ type: "pulumi:providers:vault", props: { skipTlsVerify: "true" } }, /skipTlsVerify is on/]],
    },
    {
        policy: vaultRaftReplicas,
        config: { minReplicas: 3 },
        passes: [
            {
                type: "kubernetes:helm.cattle.io/v1:HelmChart",
                props: {
                    spec: {
                        chart: "vault",
                        valuesContent:
                            "server:\n  ha:\n    enabled: true\n    replicas: 3\n    raft:\n      enabled: true\n",
                    },
                },
            },
        ],
        fails: [
            [
                { type: "kubernetes:helm.sh/v3:Release", props: { chart: "vault", values: {} } },
                /1 replica\(s\); this stack needs 3/,
            ],
            [
                {
                    type: "kubernetes:helm.sh/v3:Release",
                    props: { chart: "vault", values: { server: { ha: { enabled: true, replicas: 3 } } } },
                },
                /does not use raft/,
            ],
        ],
    },
    {
        policy: k3sSecretsEncryption,
        passes: [
            {
                type: "command:remote:Command",
                props: { create: "INSTALL_K3S_EXEC='server --secrets-encryption' sh install.sh" },
            },
            { type: "command:remote:Command", props: { create: "k3s agent --server https://10.99.0.1:6443" } },
            {
                type: "pulumi-nodejs:dynamic/infra:RemoteScript",
                props: { env: { K3S_ROLE: "server" }, stdin: 'node-name: "a"\nsecrets-encryption: true\n' },
            },
            {
                type: "pulumi-nodejs:dynamic/infra:RemoteScript",
                props: { env: { K3S_ROLE: "agent" }, stdin: 'node-name: "b"\n' },
            },
        ],
        fails: [
            [
                {
                    type: "pulumi-nodejs:dynamic/infra:RemoteScript",
                    props: { env: { K3S_ROLE: "server" }, stdin: 'node-name: "a"\nsecrets-encryption: false\n' },
                },
                /without secrets-encryption: true/,
            ],
            [
                {
                    type: "command:remote:Command",
                    props: { create: "INSTALL_K3S_EXEC=server sh install.sh --cluster-init" },
                },
                /without --secrets-encryption/,
            ],
        ],
    },
    {
        policy: hetznerServersLabelled,
        passes: [{ type: "hcloud:index/server:Server", props: { labels: { stack: "prod", role: "server" } } }],
        fails: [[{ type: "hcloud:index/server:Server", props: { labels: { stack: "prod" } } }, /no role label/]],
    },
];

describe("policy rules", () => {
    for (const c of cases) {
        describe(c.policy.name, () => {
            c.passes.forEach((r, i) =>
                it(`passes a compliant ${r.type.split(":").pop()} (${i + 1})`, () => {
                    assert.deepEqual(resourceViolations(c.policy, r, c.config), []);
                }),
            );
            c.fails.forEach(([r, message], i) =>
                it(`refuses a bad ${r.type.split(":").pop()} (${i + 1})`, () => {
                    const found = resourceViolations(c.policy, r, c.config);
                    assert.ok(
                        found.some((v) => message.test(v)),
                        `expected ${message}, got ${JSON.stringify(found)}`,
                    );
                }),
            );
        });
    }

    describe(controlPlaneSpread.name, () => {
        const server = (location: string, role = "server"): TestResource => ({
            type: "hcloud:index/server:Server",
            props: { location, labels: { stack: "prod", role } },
        });
        const prod = { minServers: 3, minLocations: 2 };
        it("passes three servers over two locations", () => {
            assert.deepEqual(
                stackViolations(controlPlaneSpread, [server("fsn1"), server("nbg1"), server("fsn1")], prod),
                [],
            );
        });
        it("refuses one location", () => {
            const found = stackViolations(controlPlaneSpread, [server("fsn1"), server("fsn1"), server("fsn1")], prod);
            assert.deepEqual(found, ["control plane in 1 location(s); this stack needs at least 2"]);
        });
        it("refuses too few servers, not counting agents", () => {
            const found = stackViolations(controlPlaneSpread, [server("fsn1"), server("nbg1", "agent")], prod);
            assert.ok(found.some((v) => v.startsWith("1 control-plane server(s)")));
        });
    });

    it("covers every rule of the pack", () => {
        const tested = new Set([...cases.map((c) => c.policy.name), controlPlaneSpread.name]);
        assert.deepEqual(
            policies.map((p) => p.name).filter((n) => !tested.has(n)),
            [],
        );
    });

    describe("per-stack policy config", () => {
        for (const stack of ["dev", "prod"]) {
            it(`${stack}.json names only rules of the pack`, () => {
                const names = new Set(policies.map((p) => p.name));
                assert.deepEqual(
                    Object.keys(policyConfig(stack)).filter((n) => !names.has(n)),
                    [],
                );
            });
        }
        it("prod is stricter than dev: SSH and read-only roots mandatory, 3 Vault replicas, 3 servers over 2 locations", () => {
            const dev = policyConfig("dev");
            const prod = policyConfig("prod");
            assert.equal(ruleSettings(dev, firewallSshNotOpenToWorld).level, "advisory");
            assert.equal(ruleSettings(prod, firewallSshNotOpenToWorld).level, "mandatory");
            assert.equal(ruleSettings(prod, workloadsReadOnlyRoot).level, "mandatory");
            assert.deepEqual(ruleSettings(prod, vaultRaftReplicas).config, { minReplicas: 3 });
            assert.deepEqual(ruleSettings(prod, controlPlaneSpread).config, { minServers: 3, minLocations: 2 });
            assert.deepEqual(ruleSettings(prod, vaultProviderVerifiesTls).config, { allowSkipTlsVerify: false });
        });
    });

    describe("the programs pass every mandatory rule under mocks", () => {
        /** Runs the program for a stack file's settings (with some replaced) and its mandatory rules over it. */
        async function mandatoryViolations(stack: string, settings: Record<string, unknown> = {}) {
            const mocked = await programResources(stack, settings);
            const recorded = mocked.map((r): TestResource => ({ type: r.type, name: r.name, props: r.inputs }));
            const file = policyConfig(stack);
            const found: string[] = [];
            for (const policy of policies) {
                const { level, config } = ruleSettings(file, policy);
                if (level !== "mandatory") continue;
                if ("validateStack" in policy) {
                    found.push(...stackViolations(policy, recorded, config).map((v) => `${policy.name}: ${v}`));
                } else {
                    for (const r of recorded) {
                        found.push(...resourceViolations(policy, r, config).map((v) => `${policy.name}: ${v}`));
                    }
                }
            }
            return { recorded, found };
        }

        // dev, 2 bare-metal nodes and their 2 installations: 40 remote steps (mesh 6, K3s 7, foundation 8, Vault 7, apps 7, etcd snapshots 1,
        // Vault snapshots 4: no vault-backup image yet, so no CronJob), 25 Vault writes (the apps' 4 KV secrets, the
        // backup job's policy, role and 2 KV secrets), the K3s token, 10 apps secrets (2 members) and the snapshots'
        // key, Vault's initialisation, 1 unseal, admin token and root revocation, 11 components.
        // prod, 5 Hetzner nodes and their 5 installations: 63 remote steps (mesh 15, K3s 19, foundation 8, Vault 7, apps 7, etcd snapshots 3,
        // Vault snapshots 4), 25 Vault writes, 5 servers, 2 firewalls, 2 placement groups, network, subnet, SSH key,
        // its private key, the hcloud provider, the K3s token, 6 apps secrets (no members) and the snapshots' key,
        // Vault's initialisation, 3 unseals, admin token, root revocation, 12 components.
        for (const [stack, count] of [
            ["dev", 94],
            ["prod", 133],
        ] as const) {
            it(`${stack}: all ${count} of its resources`, async () => {
                const { recorded, found } = await mandatoryViolations(stack);
                assert.equal(recorded.length, count, recorded.map((r) => `${r.type} ${r.name}`).join("\n"));
                assert.deepEqual(found, []);
            });
        }

        it("goes red on a prod whose admin CIDRs are the whole internet", async () => {
            const { found } = await mandatoryViolations("prod", { "peoples-cloud:adminCidrs": ["0.0.0.0/0"] });
            assert.deepEqual(found, [
                "firewall-ssh-not-open-to-world: opens SSH (22) to the whole internet; list admin CIDRs in peoples-cloud:adminCidrs",
            ]);
        });

        it("goes red on a prod with one server in one location (one Vault replica)", async () => {
            const { found } = await mandatoryViolations("prod", {
                "peoples-cloud:nodes": { provider: "hetzner", locations: ["fsn1"], servers: { count: 1 } },
            });
            assert.deepEqual(found, [
                "vault-raft-replicas: Vault runs 1 replica(s); this stack needs 3",
                "vault-raft-replicas: Vault's HA mode does not use raft storage",
                "control-plane-spread: 1 control-plane server(s); this stack needs at least 3",
                "control-plane-spread: control plane in 1 location(s); this stack needs at least 2",
            ]);
        });
    });
});
