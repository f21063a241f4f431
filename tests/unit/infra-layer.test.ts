// The infra layer's graph under mocks, with either provider: what it runs on 1, 3 and 5 nodes, that a node's
// mesh address does not move when another comes or goes, and that what it outputs about access is secret.
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { InfraLayer } from "../../components/infra/layer";
import { type Settings, settingsSchema } from "../../stacks/schema";
import { settled, unwrap, useMocks } from "../helpers/mocks";
import { infraArgs } from "../../program";

type Provider = "bare-metal" | "hetzner";
const sshPrivateKey = "test-only-private-key";

/** n nodes: up to three servers, the rest agents (etcd wants an odd number). */
function nodesSettings(provider: Provider, n: number) {
    const servers = Math.min(n, 3);
    if (provider === "hetzner") {
        return {
            provider,
            locations: ["fsn1", "nbg1"],
            servers: { count: servers },
            agents: { count: n - servers },
        };
    }
    return {
        provider,
        // Agents listed first, to show the layer puts the servers first, in the order listed.
        hosts: Array.from({ length: n }, (_, i) => ({
            name: i < servers ? `server-${i + 1}` : `agent-${i + 1 - servers}`,
            address: `192.0.2.${i + 11}`,
            role: i < servers ? "server" : "agent",
        })).sort((a, b) => Number(a.role === "server") - Number(b.role === "server")),
    };
}

/** The family stack's infra layer for these settings, reached with the test's SSH key. */
function familyLayer(settings: Settings): InfraLayer {
    return new InfraLayer(
        "infra",
        infraArgs({
            project: "peoples-cloud",
            stack: "family",
            settings,
            secrets: { sshPrivateKey: pulumi.secret(sshPrivateKey) },
        }),
    );
}

/** The layer for these nodes, with what Hetzner also needs (admin CIDRs, a public key) and the SSH key. */
function layerOf(nodes: unknown): InfraLayer {
    return familyLayer(
        settingsSchema.parse({ nodes, adminCidrs: ["198.51.100.0/24"], sshPublicKey: "ssh-ed25519 AAAAtest admin" }),
    );
}

async function buildLayer(provider: Provider, n: number) {
    const recorded = await useMocks("family", { values: {}, secretKeys: new Set<string>() }, (r) => {
        if (r.type === "hcloud:index/server:Server") return { ipv4Address: "203.0.113.1" };
        // What a script prints (a public key, the kubeconfig) is only known once it ran.
        if (r.type === "pulumi-nodejs:dynamic/infra:RemoteScript") return { stdout: `printed by ${r.name}` };
        if (r.type === "pulumi-nodejs:dynamic/infra:NodeInstallation") return { generation: 1 };
        return {};
    });
    const layer = layerOf(nodesSettings(provider, n));
    const scripts = () => recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/infra:RemoteScript");
    // Mesh: install, key, wg0 per node. K3s: token file and install per node, a member and a forget step
    // (for a reinstalled machine) per joiner, kubeconfig.
    const want = 3 * n + 2 * n + 2 * (n - 1) + 1;
    await settled();
    assert.equal(
        scripts().length,
        want,
        scripts()
            .map((s) => `${String(s.inputs.node)}: ${String(s.inputs.step)}`)
            .join("\n"),
    );
    return { layer, recorded, scripts: scripts(), want };
}

describe("infra layer graph", () => {
    for (const provider of ["bare-metal", "hetzner"] as const) {
        for (const n of [1, 3, 5]) {
            it(`${provider}, ${n} node(s): mesh and K3s steps on every node, servers first, access secret`, async () => {
                const { layer, recorded, scripts, want } = await buildLayer(provider, n);
                assert.equal(
                    scripts.length,
                    want,
                    scripts.map((s) => `${String(s.inputs.node)}: ${String(s.inputs.step)}`).join("\n"),
                );
                assert.equal(
                    recorded.filter((r) => r.type === "hcloud:index/server:Server").length,
                    provider === "hetzner" ? n : 0,
                );
                const roles = layer.nodes.map((node) => node.role);
                assert.deepEqual(
                    roles,
                    [...roles].sort((a, b) => Number(a === "agent") - Number(b === "agent")),
                );
                assert.equal(layer.nodes[0].name, "server-1", "the first server bootstraps etcd");
                for (const node of layer.nodes) {
                    const steps = scripts.filter((s) => s.inputs.node === node.name).map((s) => s.inputs.step);
                    for (const step of ["install wireguard-tools", "generate the WireGuard key", "apply wg0"]) {
                        assert.ok(steps.includes(step), `${node.name}: no ${step}`);
                    }
                    assert.ok(steps.includes(`install K3s (${node.role})`), `${node.name}: no K3s install`);
                    assert.equal((await unwrap(node.connection)).secret, true, `${node.name}'s connection`);
                }
                // Every step about a node runs again when its machine is reinstalled: it has its installation.
                const installations = recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/infra:NodeInstallation");
                assert.deepEqual(
                    installations.map((r) => r.inputs.node).sort(),
                    layer.nodes.map((node) => node.name).sort(),
                );
                const without = scripts.filter((s) => s.inputs.installation !== 1);
                assert.deepEqual(
                    without.map((s) => `${String(s.inputs.node)}: ${String(s.inputs.step)}`),
                    [],
                    "steps that would not run again on a reinstalled machine",
                );
                assert.ok(layer.cluster, "no cluster output");
                const kubeconfig = await unwrap(layer.cluster.kubeconfig);
                assert.deepEqual(kubeconfig, { value: "printed by infra-k3s-kubeconfig", secret: true });
                assert.equal(layer.cluster.apiEndpoint, `https://${layer.nodes[0].meshAddress}:6443`);
                // Those that reach a node over SSH take its connection, secret in the engine (tests/integration).
                const overSsh = ["RemoteScript", "NodeInstallation"].map((t) => `pulumi-nodejs:dynamic/infra:${t}`);
                const plain = JSON.stringify(recorded.filter((r) => !overSsh.includes(r.type)).map((r) => r.inputs));
                assert.ok(!plain.includes(sshPrivateKey), "the SSH private key in a resource's plain inputs");
            });
        }

        it(`${provider}: no node's mesh address moves when nodes are added or removed`, async () => {
            const addresses = async (n: number) =>
                new Map((await buildLayer(provider, n)).layer.nodes.map((node) => [node.name, node.meshAddress]));
            const three = await addresses(3);
            const five = await addresses(5);
            assert.equal(new Set(five.values()).size, 5, "two nodes share a mesh address");
            for (const [name, address] of three) assert.equal(five.get(name), address, name);
        });
    }

    it("keeps a leaving host in the mesh and takes it out of K3s (its drain runs while the tunnels still carry it)", async () => {
        const recorded = await useMocks("family", { values: {}, secretKeys: new Set<string>() }, () => ({
            stdout: "",
        }));
        const hosts = nodesSettings("bare-metal", 5).hosts!.map((h) =>
            h.name === "agent-2" || h.name === "server-3" ? { ...h, leaving: true } : h,
        );
        const layer = layerOf({
            provider: "bare-metal",
            hosts: [...hosts, { name: "server-4", address: "192.0.2.40" }],
        });
        const scripts = () => recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/infra:RemoteScript");
        // Mesh: 3 steps on each of 6 nodes; K3s: token + install on 4, a member and a forget step for 3 joiners,
        // the kubeconfig.
        await settled();
        const stepsOn = (node: string) =>
            scripts()
                .filter((s) => s.inputs.node === node)
                .map((s) => String(s.inputs.step));
        for (const leaving of ["server-3", "agent-2"]) {
            assert.deepEqual(stepsOn(leaving).sort(), [
                "apply wg0",
                "generate the WireGuard key",
                "install wireguard-tools",
            ]);
            assert.ok(!stepsOn("server-1").some((s) => s.startsWith(leaving)), `${leaving} still joins the cluster`);
        }
        assert.deepEqual(
            layer.clusterNodes.map((n) => n.name),
            ["server-1", "server-2", "server-4", "agent-1"],
        );
        assert.equal(layer.nodes.length, 6);
        assert.equal(scripts().length, 33);
    });

    it("Hetzner: the last `leaving` agents and servers stay in the mesh and leave K3s", async () => {
        const recorded = await useMocks("family", { values: {}, secretKeys: new Set<string>() }, (r) =>
            r.type === "hcloud:index/server:Server" ? { ipv4Address: "203.0.113.1" } : { stdout: "" },
        );
        const layer = layerOf({
            provider: "hetzner",
            servers: { count: 5, leaving: 2 },
            agents: { count: 2, leaving: 1 },
        });
        assert.deepEqual(
            layer.clusterNodes.map((n) => n.name),
            ["server-1", "server-2", "server-3", "agent-1"],
        );
        assert.equal(layer.nodes.length, 7, "leaving servers are still Hetzner servers in the mesh");
        const scripts = () => recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/infra:RemoteScript");
        await settled();
        for (const leaving of ["server-4", "server-5", "agent-2"]) {
            const steps = scripts().filter((s) => s.inputs.node === leaving);
            assert.equal(steps.length, 3, `${leaving}: ${steps.map((s) => String(s.inputs.step)).join(", ")}`);
        }
        assert.equal(recorded.filter((r) => r.type === "hcloud:index/server:Server").length, 7);
        // Mesh: 3 steps on each of 7 nodes; K3s: token + install on 4, a member and a forget step for 3 joiners,
        // the kubeconfig.
        assert.equal(scripts().length, 21 + 8 + 2 * 3 + 1);
    });

    it("makes the Kubernetes provider from the kubeconfig once, and only when a layer asks", async () => {
        const { layer, recorded } = await buildLayer("bare-metal", 3);
        const providers = () => recorded.filter((r) => r.type === "pulumi:providers:kubernetes");
        assert.equal(providers().length, 0, "a stack without a cluster layer would need the plugin");
        const provider = layer.kubernetesProvider();
        assert.equal(layer.kubernetesProvider(), provider);
        await settled();
        assert.equal(providers().length, 1);
        // The engine receives it as a secret: the value wrapped with Pulumi's secret signature.
        assert.deepEqual(providers()[0].inputs.kubeconfig, {
            [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig,
            value: "printed by infra-k3s-kubeconfig",
        });
    });

    it("has no Kubernetes provider with K3s switched off", async () => {
        await useMocks("family", { values: {}, secretKeys: new Set<string>() });
        const settings = settingsSchema.parse({ nodes: nodesSettings("bare-metal", 1), k3s: { enabled: false } });
        const layer = familyLayer(settings);
        assert.equal(layer.cluster, undefined);
        assert.throws(() => layer.kubernetesProvider(), /peoples-cloud:k3s\.enabled is false/);
    });

    it("bare metal without an SSH key stops with the key to set", async () => {
        await useMocks("family", { values: {}, secretKeys: new Set<string>() });
        const settings = settingsSchema.parse({ nodes: nodesSettings("bare-metal", 1) });
        assert.throws(
            () =>
                new InfraLayer(
                    "infra",
                    infraArgs({ project: "peoples-cloud", stack: "family", settings, secrets: {} }),
                ),
            /peoples-cloud:sshPrivateKey/,
        );
    });
});
