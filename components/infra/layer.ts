// The infra layer: nodes from one of two providers, the WireGuard mesh between them (and the operators'
// devices), and HA K3s on the mesh. What it outputs is all the next layers need to know of the machines.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { PlatformConfig } from "../../stacks/config";
import { parseCidr } from "../../stacks/cidr";
import { HetznerNodes } from "./hetzner";
import { K3sCluster } from "./k3s";
import { meshAddressOf } from "./mesh-addresses";
import { WireGuardMesh } from "./mesh";
import { bareMetalNodes, type ClusterNode } from "./nodes";

export class InfraLayer extends pulumi.ComponentResource {
    /** Every node, in the mesh; those `leaving` are no longer in the cluster. */
    readonly nodes: ClusterNode[];
    /** The nodes K3s runs on. */
    readonly clusterNodes: ClusterNode[];
    readonly meshPublicKeys: pulumi.Output<Record<string, string>>;
    /** The K3s cluster (its kubeconfig secret, its API on the mesh); absent when K3s is switched off. */
    readonly cluster?: K3sCluster;

    private provider?: k8s.Provider;

    constructor(
        private readonly name: string,
        config: PlatformConfig,
        opts?: pulumi.ComponentResourceOptions,
    ) {
        super("peoples-cloud:infra:InfraLayer", name, {}, opts);
        const { settings, secrets } = config;
        const mesh = settings.mesh;
        if (settings.nodes.provider === "hetzner") {
            this.nodes = new HetznerNodes(
                `${name}-hetzner`,
                {
                    settings: settings.nodes,
                    meshCidr: mesh.cidr,
                    wireguardPort: mesh.port,
                    adminCidrs: settings.adminCidrs,
                    sshPrivateKey: secrets.sshPrivateKey,
                    sshPublicKey: settings.sshPublicKey,
                },
                { parent: this },
            ).nodes;
        } else {
            if (!secrets.sshPrivateKey) throw new Error("bare-metal nodes need peoples-cloud:sshPrivateKey");
            this.nodes = bareMetalNodes(settings.nodes.hosts, mesh.cidr, secrets.sshPrivateKey);
        }
        // Servers first: the first one listed bootstraps etcd.
        this.nodes = [...this.nodes].sort((a, b) => Number(a.role === "agent") - Number(b.role === "agent"));

        const wg = new WireGuardMesh(
            `${name}-mesh`,
            {
                nodes: this.nodes,
                devices: settings.devices.map((d) => ({ ...d, meshAddress: meshAddressOf(d.name, mesh.cidr) })),
                prefixLength: parseCidr(mesh.cidr)!.prefix,
                listenPort: mesh.port,
            },
            { parent: this },
        );
        this.meshPublicKeys = wg.publicKeys;
        // A leaving node's K3s steps are deleted (drain, removal, uninstall) while its tunnels still carry them.
        this.clusterNodes = this.nodes.filter((n) => !n.leaving);
        if (settings.k3s.enabled) {
            this.cluster = new K3sCluster(
                `${name}-k3s`,
                { nodes: this.clusterNodes, settings: settings.k3s },
                { parent: this, dependsOn: [wg] },
            );
        }
        this.registerOutputs({ meshPublicKeys: this.meshPublicKeys, kubeconfig: this.cluster?.kubeconfig });
    }

    /**
     * The provider the next layers deploy with, made from the kubeconfig when a layer first asks for it, so
     * that a stack without such a layer previews without the Kubernetes provider plugin.
     */
    kubernetesProvider(): k8s.Provider {
        if (!this.cluster) {
            throw new Error("peoples-cloud:k3s.enabled is false: there is no cluster for the next layers");
        }
        this.provider ??= new k8s.Provider(
            `${this.name}-kubernetes`,
            { kubeconfig: this.cluster.kubeconfig, enableServerSideApply: true },
            { parent: this },
        );
        return this.provider;
    }
}
