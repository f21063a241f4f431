// K3s's config per role and the cluster's graph under mocks; the remote steps on real hosts are in
// tests/integration/infra-mesh.test.ts (up to where the K3s binary would be needed).
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { load } from "js-yaml";
import { K3sCluster, k3sConfig, renderK3sConfig } from "../../components/infra/k3s";
import type { ClusterNode } from "../../components/infra/nodes";
import { settingsSchema } from "../../stacks/schema";
import { settled, useMocks } from "../helpers/mocks";

const settings = (k3s: Record<string, unknown> = {}) =>
    settingsSchema.parse({ nodes: { provider: "bare-metal", hosts: [{ name: "a", address: "192.0.2.1" }] }, k3s }).k3s;

const node = (name: string, role: ClusterNode["role"], i: number): ClusterNode => ({
    name,
    role,
    publicAddress: `192.0.2.${i + 10}`,
    meshAddress: `10.99.0.${i + 1}`,
    ingress: role === "server",
    connection: pulumi.secret({ host: `192.0.2.${i + 10}`, user: "root", privateKey: "test-only-key" }),
});

describe("k3s config per role", () => {
    const [s1, s2, s3, a1] = [
        node("s1", "server", 0),
        node("s2", "server", 1),
        node("s3", "server", 2),
        node("a1", "agent", 3),
    ];
    const servers = [s1, s2, s3];

    it("starts etcd on the first server, joins the others and the agents to it, all on the mesh", () => {
        const first = k3sConfig(s1, s1, servers, settings());
        assert.equal(first["cluster-init"], true);
        assert.equal(first.server, undefined);
        for (const n of [s2, a1]) {
            const c = k3sConfig(n, s1, servers, settings());
            assert.equal(c.server, "https://10.99.0.1:6443", n.name);
            assert.equal(c["cluster-init"], undefined, n.name);
        }
        for (const n of [s1, s2, s3, a1]) {
            const c = k3sConfig(n, s1, servers, settings());
            assert.equal(c["node-ip"], n.meshAddress);
            assert.equal(c["flannel-iface"], "wg0");
            assert.equal(c["token-file"], "/etc/rancher/k3s/cluster-token");
            assert.ok(!Object.keys(c).includes("token"), "the token itself is never in the config");
        }
    });

    it("binds and advertises servers' API on the mesh, with every server in the TLS SANs and secrets encrypted", () => {
        const c = k3sConfig(s2, s1, servers, settings());
        assert.equal(c["bind-address"], "10.99.0.2");
        assert.equal(c["advertise-address"], "10.99.0.2");
        assert.deepEqual(c["tls-san"], ["10.99.0.1", "10.99.0.2", "10.99.0.3"]);
        assert.equal(c["secrets-encryption"], true);
        assert.equal(c["cluster-cidr"], "10.42.0.0/16");
        const agent = k3sConfig(a1, s1, servers, settings());
        for (const serverOnly of ["bind-address", "tls-san", "secrets-encryption", "cluster-cidr"]) {
            assert.equal(agent[serverOnly], undefined, `an agent got ${serverOnly}`);
        }
    });

    it("adds extra args per role, lists repeated flags, and refuses flags the program sets", () => {
        const k3s = settings({
            extraServerArgs: ["--disable=traefik", "--disable=servicelb", "--node-label=zone=a", "--debug"],
            extraAgentArgs: ["--node-taint=dedicated=storage:NoSchedule"],
        });
        const c = k3sConfig(s1, s1, servers, k3s);
        assert.deepEqual(c.disable, ["traefik", "servicelb"]);
        assert.deepEqual(c["node-label"], ["peoples-cloud/role=server", "zone=a"]);
        assert.equal(c.debug, true);
        assert.equal(k3sConfig(a1, s1, servers, k3s)["node-taint"], "dedicated=storage:NoSchedule");
        assert.equal(k3sConfig(a1, s1, servers, k3s).disable, undefined);
        const refused = settingsSchema.safeParse({
            nodes: { provider: "bare-metal", hosts: [{ name: "a", address: "192.0.2.1" }] },
            k3s: { extraServerArgs: ["--secrets-encryption=false"] },
        });
        assert.equal(refused.success, false);
        assert.match(JSON.stringify(refused.error?.issues), /extraServerArgs.*set by the program/);
    });

    it("renders YAML that parses back to the same config", () => {
        const c = k3sConfig(s2, s1, servers, settings({ extraServerArgs: ['--kube-apiserver-arg=x="y: z"'] }));
        assert.deepEqual(load(renderK3sConfig(c)), c);
    });
});

describe("k3s cluster graph", () => {
    for (const [serverCount, agentCount] of [
        [1, 0],
        [3, 2],
        [5, 3],
    ]) {
        it(`with ${serverCount} servers and ${agentCount} agents: a token, a token file and an install per node, a member per joiner`, async () => {
            const recorded = await useMocks("dev", { values: {}, secretKeys: new Set<string>() });
            const nodes = [
                ...Array.from({ length: serverCount }, (_, i) => node(`server-${i + 1}`, "server", i)),
                ...Array.from({ length: agentCount }, (_, i) => node(`agent-${i + 1}`, "agent", serverCount + i)),
            ];
            new K3sCluster("k3s", { nodes, settings: settings() });
            const scripts = () => recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/infra:RemoteScript");
            // A member and a forget step per joiner, the kubeconfig.
            const want = 2 * nodes.length + 2 * (nodes.length - 1) + 1;
            await settled();
            assert.equal(recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/infra:RandomToken").length, 1);
            const steps = scripts().map((s) => `${String(s.inputs.node)}: ${String(s.inputs.step)}`);
            assert.equal(steps.length, want, steps.join("\n"));
            for (const n of nodes) {
                assert.ok(steps.includes(`${n.name}: write the K3s token`));
                assert.ok(steps.includes(`${n.name}: install K3s (${n.role})`));
            }
            // Joins are checked, and drained on removal, from the first server.
            const members = scripts().filter((s) => String(s.inputs.step).endsWith("joins the cluster"));
            assert.equal(members.length, nodes.length - 1);
            assert.ok(
                members.every((m) => m.inputs.node === "server-1" && String(m.inputs.deleteScript).includes("drain")),
            );
            // Each joiner is forgotten, from the first server, before its installation on a reinstalled machine.
            const forgets = scripts().filter((s) => String(s.inputs.step).startsWith("forget "));
            assert.deepEqual(
                forgets.map((f) => [f.inputs.node, f.inputs.env, f.inputs.installation]),
                nodes.slice(1).map((n) => ["server-1", { K3S_NODE: n.name }, n.installation]),
            );
            const installs = scripts().filter((s) => String(s.inputs.step).startsWith("install K3s"));
            assert.ok(installs.every((s) => String(s.inputs.deleteScript).includes("k3s-uninstall")));
            for (const s of installs) {
                const env = s.inputs.env as Record<string, string>;
                assert.equal(env.K3S_VERSION, "v1.33.5+k3s1");
                if (env.K3S_ROLE === "server") assert.match(String(s.inputs.stdin), /^secrets-encryption: true$/m);
                assert.ok(!String(s.inputs.stdin).includes("token:"), "a token in a plain input");
            }
            for (const s of scripts()) {
                assert.match(String(s.inputs.script), /^#!\/usr\/bin\/env bash\n(#.*\n)*set -euo pipefail\n/);
            }
        });
    }
});
