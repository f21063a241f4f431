// The up that sets up new machines before a restore, with the real engine on two test hosts: limited to
// MACHINE_RESOURCES, it gives a reinstalled host its WireGuard again and runs its etcd snapshot settings, and
// leaves alone what the restore brings back (a Vault layer's step on that host stays undone); the up after the
// restore reads the kubeconfig again (KUBECONFIG_READ, replaced) and runs the rest. The infra layer is the
// program's own (K3s off); the other layers are stand-in components of the same types, whose steps note on
// their host that they ran.
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import type { Stack } from "@pulumi/pulumi/automation";
import { KUBECONFIG_READ, MACHINE_RESOURCES } from "../../cli/workspace";
import type { ClusterNode } from "../../components/infra/nodes";
import { RemoteScript } from "../../lib/remote-script";
import { meshAddressOf } from "../../lib/mesh-addresses";
import { type Engine, projectStack, tempEngine } from "../helpers/engine";
import { testHostsInfra } from "../helpers/infra";
import { startTestHosts, type TestHosts } from "../helpers/testhosts";

describe("restore: the up that sets up new machines, with the real engine", function () {
    this.timeout(10 * 60_000);
    let engine: Engine;
    let lab: TestHosts;
    let stack: Stack;

    before(async () => {
        lab = startTestHosts("pcrsm", 2);
        engine = await tempEngine();
        stack = await projectStack(engine, "machines", () => {
            const infra = testHostsInfra("machines", lab);
            /** A step on a node that notes its name in the node's /var/lib/peoples-cloud/ran. */
            const noted = (name: string, node: ClusterNode, parent: pulumi.Resource) =>
                new RemoteScript(
                    name,
                    {
                        node: node.name,
                        step: name,
                        connection: node.connection,
                        installation: node.installation,
                        script: `echo ${name} >>/var/lib/peoples-cloud/ran`,
                    },
                    { parent },
                );
            const component = (type: string, name: string, parent?: pulumi.Resource) =>
                new pulumi.ComponentResource(type, name, {}, { parent });
            const [first] = infra.nodes;
            noted("infra-k3s-kubeconfig", first, component("peoples-cloud:infra:K3sCluster", "infra-k3s", infra));
            const backup = component("peoples-cloud:backup:BackupLayer", "backup");
            const etcd = component("peoples-cloud:backup:EtcdSnapshots", "backup-etcd", backup);
            for (const node of infra.nodes) noted(`backup-etcd-${node.name}`, node, etcd);
            const vault = component("peoples-cloud:vault:VaultLayer", "vault");
            for (const node of infra.nodes) noted(`vault-on-${node.name}`, node, vault);
            return Promise.resolve({});
        });
    });
    after(() => {
        engine?.cleanup();
        lab?.stop();
    });

    /** The steps that noted they ran on a host, sorted (steps run side by side). */
    const ran = async (host: number) =>
        (await lab.run(lab.hosts[host], "cat /var/lib/peoples-cloud/ran 2>/dev/null || true"))
            .trim()
            .split("\n")
            .filter(Boolean)
            .sort();
    const ping = (from: number, to: number) =>
        lab.inNamespace(lab.hosts[from], [
            "ping",
            "-c",
            "1",
            "-W",
            "3",
            meshAddressOf(lab.hosts[to].name, "10.99.0.0/16"),
        ]);

    it("sets up a reinstalled machine's WireGuard and etcd settings, and nothing the restore brings back", async () => {
        await stack.up();
        const untouched = await ran(1);
        assert.deepEqual(untouched, ["backup-etcd-node-2", "vault-on-node-2"]);
        // The first host reinstalled: WireGuard and everything the program left there gone.
        await lab.run(lab.hosts[0], "wg-quick down wg0 && rm -rf /etc/wireguard/* /var/lib/peoples-cloud/*");

        const updated: string[] = [];
        const up = await stack.up({
            target: MACHINE_RESOURCES,
            onEvent: (e) => {
                const step = e.resOutputsEvent?.metadata;
                if (step?.op === "update") updated.push(step.urn.split("::").at(-1)!);
            },
        });
        // Its installation, its 3 mesh steps, the kubeconfig read (the first server's), its etcd settings, and
        // wg0 on the other host (its new key): not the Vault layer's step.
        assert.deepEqual(updated.sort(), [
            "backup-etcd-node-1",
            "infra-k3s-kubeconfig",
            "infra-mesh-node-1-install",
            "infra-mesh-node-1-key",
            "infra-mesh-node-1-wg0",
            "infra-mesh-node-2-wg0",
            "infra-node-1-installation",
        ]);
        assert.equal(up.summary.resourceChanges?.update, updated.length);
        assert.deepEqual(await ran(0), ["backup-etcd-node-1", "infra-k3s-kubeconfig"]);
        ping(0, 1);
        ping(1, 0);

        const after = await stack.up({ replace: [KUBECONFIG_READ] });
        assert.equal(after.summary.resourceChanges?.replace, 1);
        assert.equal(after.summary.resourceChanges?.update, 1, "the Vault layer's step on the new machine");
        // The kubeconfig read again, from the cluster the restore brought back.
        assert.deepEqual(await ran(0), [
            "backup-etcd-node-1",
            "infra-k3s-kubeconfig",
            "infra-k3s-kubeconfig",
            "vault-on-node-1",
        ]);
        assert.deepEqual(await ran(1), untouched, "a step ran again on the machine that was not reinstalled");
    });
});
