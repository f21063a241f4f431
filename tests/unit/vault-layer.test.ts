// The Vault layer's install under mocks: replicas by cluster size (three raft replicas on different nodes from
// three nodes, one non-HA server below), chart and image pinned, TLS from the internal CA, each step after
// what it needs, and the bootstrap run as the Vault CLI in each pod through the first server.
import * as assert from "node:assert/strict";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";
import { FoundationLayer } from "../../components/foundation/layer";
import type { HelmChart, KubeObject } from "../../lib/kube";
import { InfraLayer } from "../../components/infra/layer";
import { VaultLayer } from "../../components/vault/layer";
import type { VaultSecretsOperatorValues, VaultValues } from "../../components/vault/manifests";
import { tokenFromStdin } from "../../lib/vault/operator";
import { settingsSchema } from "../../stacks/schema";
import { dependencyRecorder, type RecordedResource, settled, useMocks } from "../helpers/mocks";
import { bareMetalNodes } from "../helpers/stackConfig";
import { infraArgs, foundationArgs, vaultArgs } from "../../program";

const remoteScript = "pulumi-nodejs:dynamic/infra:RemoteScript";

async function buildVault(nodeCount: number) {
    const recorded = await useMocks("family", { values: {}, secretKeys: new Set<string>() }, () => ({ stdout: "" }));
    const settings = settingsSchema.parse({
        nodes: bareMetalNodes(nodeCount),
        vault: { keyShares: 3, keyThreshold: 2 },
    });
    const infra = new InfraLayer(
        "infra",
        infraArgs({
            project: "peoples-cloud",
            stack: "family",
            settings,
            secrets: { sshPrivateKey: pulumi.secret("test-only-key") },
        }),
    );
    const { transformations, after } = dependencyRecorder([[infra.cluster!, "infra-k3s"]]);
    const foundation = new FoundationLayer(
        "crds",
        foundationArgs({ project: "peoples-cloud", stack: "family", settings, secrets: {} }, infra.cluster!),
        { transformations },
    );
    const vault = new VaultLayer(
        "vault",
        vaultArgs({ project: "peoples-cloud", stack: "family", settings, secrets: {} }, infra, foundation),
        { transformations },
    );
    const mine = () => recorded.filter((r) => r.name.startsWith("vault-") && !r.type.startsWith("peoples-cloud:"));
    // Manifests and waits (Vault's and the operator's), the initialisation, one unseal per replica, and the
    // configuration (tests/unit/vault-config.test.ts): 17 writes for two apps, the admin token, the revocation.
    const want = 7 + 1 + vault.replicas + 19;
    await settled();
    assert.equal(
        mine().length,
        want,
        mine()
            .map((r) => r.name)
            .join(", "),
    );
    const byName = (name: string) => recorded.find((r) => r.name === name)!;
    return { vault, recorded: mine(), after, byName };
}

/** The engine's wire form of a secret value; the operator holds the SSH key, so it must be one. */
const secretSig = "4dabf18193072939515e22adb298388d";
function unwrapSecret(value: unknown): unknown {
    const wire = value as Record<string, unknown>;
    assert.equal(wire[secretSig], "1b47061264138c4ac30d75fd1eb44270", "not a secret");
    return wire.value;
}

const objectsOf = (r: RecordedResource) => yaml.loadAll(r.inputs.stdin as string) as KubeObject[];
const valuesOf = (r: RecordedResource) => yaml.load((objectsOf(r)[0] as HelmChart).spec.valuesContent) as VaultValues;

describe("vault layer install", () => {
    for (const [nodes, replicas] of [
        [1, 1],
        [2, 1],
        [3, 3],
        [5, 3],
    ] as const) {
        it(`runs ${replicas} replica(s) on ${nodes} node(s)`, async () => {
            const { vault, byName } = await buildVault(nodes);
            assert.equal(vault.replicas, replicas);
            const { server } = valuesOf(byName("vault-vault"));
            if (replicas === 3) {
                assert.deepEqual(server.standalone, { enabled: false });
                assert.equal(server.ha.enabled, true);
                assert.equal(server.ha.replicas, 3);
                assert.deepEqual([server.ha.raft?.enabled, server.ha.raft?.setNodeId], [true, true]);
                assert.match(server.ha.raft!.config, /storage "raft"/);
                // Never two replicas on one node.
                assert.ok(server.affinity !== "");
                const [term] = server.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
                assert.equal(term.topologyKey, "kubernetes.io/hostname");
                assert.deepEqual(term.labelSelector.matchLabels, {
                    "app.kubernetes.io/name": "vault",
                    component: "server",
                });
            } else {
                assert.deepEqual(server.ha, { enabled: false });
                assert.equal(server.standalone.enabled, true);
                assert.match(
                    server.standalone.config!,
                    /storage "raft"[\s\S]*cluster_addr|cluster_addr[\s\S]*storage "raft"/,
                );
                assert.equal(server.affinity, "");
            }
        });
    }

    it("pins the chart and the image, switches the injector off, and serves TLS from the internal CA", async () => {
        const { byName } = await buildVault(3);
        const chart = objectsOf(byName("vault-vault"))[0] as HelmChart;
        assert.deepEqual(
            [chart.spec.repo, chart.spec.chart, chart.spec.version],
            ["https://helm.releases.hashicorp.com", "vault", "0.32.0"],
        );
        const values = valuesOf(byName("vault-vault"));
        assert.deepEqual(values.server.image, { repository: "hashicorp/vault", tag: "1.21.2" });
        assert.equal(values.injector.enabled, false);
        assert.equal(values.global.tlsDisable, false);
        assert.match(values.server.ha.raft!.config, /tls_cert_file = "\/vault\/userconfig\/vault-tls\/tls\.crt"/);
        assert.doesNotMatch(values.server.ha.raft!.config, /tls_disable/);

        const [namespace, certificate] = objectsOf(byName("vault-vault-tls"));
        assert.equal(namespace.kind, "Namespace");
        const spec = certificate.spec as { issuerRef: { name: string }; dnsNames: string[]; ipAddresses: string[] };
        assert.equal(spec.issuerRef.name, "peoples-cloud-internal-ca");
        for (const name of ["vault.vault.svc", "*.vault-internal", "vault-active.vault.svc"]) {
            assert.ok(spec.dnsNames.includes(name), name);
        }
        assert.deepEqual(spec.ipAddresses, ["127.0.0.1"]);
    });

    it("installs after the foundation is ready, and bootstraps once every server answers", async () => {
        const { after } = await buildVault(3);
        const tls = after("vault-vault-tls");
        for (const ready of [
            "crds-cert-manager-ready",
            "crds-internal-ca-ready",
            "crds-prometheus-operator-crds-ready",
        ]) {
            assert.ok(tls.has(ready), `vault-tls does not wait for ${ready}`);
        }
        assert.ok(after("vault-vault").has("vault-tls-ready"));
        assert.ok(after("vault-bootstrap").has("vault-pods-answer"));
        assert.ok(after("vault-pods-answer").has("vault-vault"));
        assert.ok(after("vault-config").has("vault-bootstrap"), "configured once bootstrapped");
    });

    it("configures Vault through vault-0's CLI over the same SSH connection as the bootstrap", async () => {
        const { recorded } = await buildVault(3);
        const configured = recorded.filter((r) => r.name.startsWith("vault-config-"));
        assert.equal(configured.length, 19);
        const init = recorded.find((r) => r.type === "pulumi-nodejs:dynamic/vault:Initialization")!;
        for (const r of configured) assert.deepEqual(r.inputs.operator, init.inputs.operator, r.name);
        assert.equal((unwrapSecret(init.inputs.operator) as { name: string }).name, "vault-0");
    });

    it("runs the Vault CLI in each pod through the first server, joining followers with the leader's CA", async () => {
        const { recorded, byName } = await buildVault(3);
        const waitAnswer = byName("vault-pods-answer");
        assert.deepEqual(waitAnswer.inputs.env, { VAULT_NAMESPACE: "vault", VAULT_PODS: "vault-0 vault-1 vault-2" });
        const init = recorded.find((r) => r.type === "pulumi-nodejs:dynamic/vault:Initialization")!;
        const operator = unwrapSecret(init.inputs.operator) as {
            name: string;
            command: string[];
            ssh: { host: string };
        };
        assert.equal(operator.name, "vault-0");
        assert.deepEqual(operator.command, [
            ...["k3s", "kubectl", "exec", "-i", "-n", "vault", "vault-0", "--"],
            ...tokenFromStdin("vault"),
        ]);
        assert.equal(operator.ssh.host, "192.0.2.11");
        assert.deepEqual([init.inputs.keyShares, init.inputs.keyThreshold], [3, 2]);
        const unseals = recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/vault:Unseal");
        assert.deepEqual(
            unseals.map((u) => [
                (unwrapSecret(u.inputs.operator) as { name: string }).name,
                u.inputs.joinAddress ?? null,
            ]),
            [
                ["vault-0", null],
                ["vault-1", "https://vault-0.vault-internal:8200"],
                ["vault-2", "https://vault-0.vault-internal:8200"],
            ],
        );
        assert.deepEqual(unseals[1].inputs.joinFlags, ["-leader-ca-cert=@/vault/userconfig/vault-tls/ca.crt"]);
        assert.equal(recorded.filter((r) => r.type === remoteScript).length, 7);
    });

    it("installs the Vault Secrets Operator, pinned, connected to Vault and verifying it with the internal CA", async () => {
        const { byName, after } = await buildVault(3);
        const chart = objectsOf(byName("vault-vault-secrets-operator"))[0] as HelmChart;
        assert.deepEqual(
            [chart.spec.chart, chart.spec.version, chart.spec.targetNamespace],
            ["vault-secrets-operator", "1.5.1", "vault-secrets-operator-system"],
        );
        const values = yaml.load(chart.spec.valuesContent) as VaultSecretsOperatorValues;
        assert.deepEqual(values.controller.manager.image, {
            repository: "hashicorp/vault-secrets-operator",
            tag: "1.5.1",
        });
        assert.deepEqual(values.controller.kubeRbacProxy.image, {
            repository: "quay.io/brancz/kube-rbac-proxy",
            tag: "v0.18.1",
        });
        assert.deepEqual(values.defaultVaultConnection, {
            enabled: true,
            address: "https://vault.vault.svc:8200",
            caCertSecret: "vault-ca",
            skipTLSVerify: false,
        });
        const [, certificate] = objectsOf(byName("vault-vault-secrets-operator-ca"));
        assert.deepEqual(certificate.metadata, {
            name: "vault-ca",
            namespace: "vault-secrets-operator-system",
            labels: { "app.kubernetes.io/managed-by": "peoples-cloud" },
        });
        assert.equal((certificate.spec as { issuerRef: { name: string } }).issuerRef.name, "peoples-cloud-internal-ca");
        // The CA secret exists before the chart makes the connection that reads it.
        assert.ok(after("vault-vault-secrets-operator").has("vault-vault-secrets-operator-ca-ready"));
        assert.ok(after("vault-vault-secrets-operator-ca").has("crds-cert-manager-ready"));
    });
});
