// The infra layer: nodes from one of two providers, the WireGuard mesh between them (and the operators'
// devices), and HA K3s on the mesh. What it outputs is all the next layers need to know of the machines.
import * as hcloud from "@pulumi/hcloud";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { parseCidr } from "../../lib/cidr";
import { meshAddressOf } from "../../lib/mesh-addresses";
import { NodeInstallation } from "../../lib/node-installation";
import { HetznerNodes, type HetznerSettings } from "./hetzner";
import { K3sCluster, type K3sSettingsArgs } from "./k3s";
import { WireGuardMesh } from "./mesh";
import { type BareMetalHostArgs, bareMetalNodes, type ClusterNode } from "./nodes";

/** Where the nodes come from: servers on Hetzner Cloud, or machines a family runs itself. */
export type NodeSource =
    | ({ readonly provider: "hetzner" } & HetznerSettings)
    | { readonly provider: "bare-metal"; readonly hosts: readonly BareMetalHostArgs[] };

/** A family member's device in the mesh: it made its key itself and gave only the public half. */
export interface DeviceArgs {
    readonly name: string;
    readonly publicKey: string;
}

export interface InfraLayerArgs {
    readonly nodes: NodeSource;
    /** The mesh's IPv4 CIDR (each member's address is a hash of its name into it) and WireGuard's UDP port. */
    readonly mesh: { readonly cidr: string; readonly port: number };
    /** Where SSH may reach the nodes from (a Hetzner firewall allows only these). */
    readonly adminCidrs: readonly string[];
    readonly devices: readonly DeviceArgs[];
    /** K3s on the nodes; absent, the layer stops after the mesh (test hosts, where K3s cannot run). */
    readonly k3s?: K3sSettingsArgs;
    /** Secret: the key Pulumi reaches the nodes with; required for bare metal, generated on Hetzner without it. */
    readonly sshPrivateKey?: pulumi.Input<string>;
    /** The public half of `sshPrivateKey`, for Hetzner to install on new servers. */
    readonly sshPublicKey?: string;
    /** Secret: the Hetzner Cloud API token (Hetzner only), for the layer's own explicit provider. */
    readonly hcloudToken?: pulumi.Input<string>;
}

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
        args: InfraLayerArgs,
        opts?: pulumi.ComponentResourceOptions,
    ) {
        super("peoples-cloud:infra:InfraLayer", name, {}, opts);
        const { mesh } = args;
        if (args.nodes.provider === "hetzner") {
            const hetzner = new hcloud.Provider(`${name}-hcloud`, { token: args.hcloudToken }, { parent: this });
            this.nodes = new HetznerNodes(
                `${name}-hetzner`,
                {
                    settings: args.nodes,
                    meshCidr: mesh.cidr,
                    wireguardPort: mesh.port,
                    adminCidrs: args.adminCidrs,
                    sshPrivateKey: args.sshPrivateKey,
                    sshPublicKey: args.sshPublicKey,
                },
                { parent: this, providers: [hetzner] },
            ).nodes;
        } else {
            if (!args.sshPrivateKey) throw new Error("bare-metal nodes need peoples-cloud:sshPrivateKey");
            this.nodes = bareMetalNodes(args.nodes.hosts, mesh.cidr, args.sshPrivateKey);
        }
        // Servers first: the first one listed bootstraps etcd. Each node's steps carry the generation of its
        // installation, so that a machine reinstalled since the last up gets them all again.
        this.nodes = [...this.nodes]
            .sort((a, b) => Number(a.role === "agent") - Number(b.role === "agent"))
            .map((node) => ({
                ...node,
                installation: new NodeInstallation(
                    `${name}-${node.name}-installation`,
                    { node: node.name, connection: node.connection },
                    { parent: this },
                ).generation,
            }));

        const wg = new WireGuardMesh(
            `${name}-mesh`,
            {
                nodes: this.nodes,
                devices: args.devices.map((d) => ({ ...d, meshAddress: meshAddressOf(d.name, mesh.cidr) })),
                prefixLength: parseCidr(mesh.cidr)!.prefix,
                listenPort: mesh.port,
            },
            { parent: this },
        );
        this.meshPublicKeys = wg.publicKeys;
        // A leaving node's K3s steps are deleted (drain, removal, uninstall) while its tunnels still carry them.
        this.clusterNodes = this.nodes.filter((n) => !n.leaving);
        if (args.k3s) {
            this.cluster = new K3sCluster(
                `${name}-k3s`,
                { nodes: this.clusterNodes, settings: args.k3s },
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
