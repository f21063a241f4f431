// The WireGuard mesh between nodes: on each node, wireguard-tools installed when missing, a private key born
// there (only its public key comes back), and wg0 written with every other node as a peer and applied with
// `wg syncconf`, so adding or removing a node never drops the live tunnels between the others.
import * as pulumi from "@pulumi/pulumi";
import { RemoteScript, type SshConnection } from "../../lib/remote-script";
import { scriptsIn } from "../../lib/scripts";
import { renderWireGuardConfig } from "./wireguard";

const script = scriptsIn(__dirname);

export interface MeshNode {
    readonly name: string;
    /** Where the other nodes reach this one's WireGuard port. */
    readonly publicAddress: pulumi.Input<string>;
    /** This node's address inside the mesh. */
    readonly meshAddress: string;
    /** Secret: how SSH reaches it, to make its key and write its wg0. */
    readonly connection: pulumi.Input<SshConnection>;
    /** The generation of its installation: a reinstalled node gets its key and wg0 again. */
    readonly installation?: pulumi.Input<number>;
}

/** An operator's or family member's device: a roaming peer that made its own key and reaches the nodes. */
export interface MeshDevice {
    readonly name: string;
    readonly publicKey: string;
    readonly meshAddress: string;
}

export interface WireGuardMeshArgs {
    readonly nodes: readonly MeshNode[];
    readonly devices?: readonly MeshDevice[];
    /** The mesh's prefix length, e.g. 16 for 10.99.0.0/16. */
    readonly prefixLength: number;
    /** WireGuard's UDP port on every node; 51820 by default. */
    readonly listenPort?: number;
}

export class WireGuardMesh extends pulumi.ComponentResource {
    /** Node name -> its WireGuard public key. */
    readonly publicKeys: pulumi.Output<Record<string, string>>;

    constructor(name: string, args: WireGuardMeshArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:infra:WireGuardMesh", name, {}, opts);
        const listenPort = args.listenPort ?? 51820;
        const keys = args.nodes.map((node) => {
            const install = new RemoteScript(
                `${name}-${node.name}-install`,
                {
                    node: node.name,
                    step: "install wireguard-tools",
                    connection: node.connection,
                    installation: node.installation,
                    script: script("wg-install.sh"),
                },
                { parent: this },
            );
            return new RemoteScript(
                `${name}-${node.name}-key`,
                {
                    node: node.name,
                    step: "generate the WireGuard key",
                    connection: node.connection,
                    installation: node.installation,
                    script: script("wg-keygen.sh"),
                    keepStdout: true,
                },
                { parent: this, dependsOn: [install] },
            ).stdout;
        });
        this.publicKeys = pulumi
            .all(keys)
            .apply((all) => Object.fromEntries(args.nodes.map((n, i) => [n.name, all[i]])));
        const endpoints = pulumi.all(args.nodes.map((n) => n.publicAddress));
        const devicePeers = (args.devices ?? []).map((d) => ({
            name: d.name,
            publicKey: d.publicKey,
            allowedIps: [`${d.meshAddress}/32`],
        }));
        for (const node of args.nodes) {
            const config = pulumi.all([this.publicKeys, endpoints]).apply(([publicKeys, addresses]) =>
                renderWireGuardConfig({
                    address: `${node.meshAddress}/${args.prefixLength}`,
                    listenPort,
                    peers: [
                        ...args.nodes.flatMap((peer, i) =>
                            peer.name === node.name
                                ? []
                                : [
                                      {
                                          name: peer.name,
                                          publicKey: publicKeys[peer.name],
                                          endpoint: `${addresses[i]}:${listenPort}`,
                                          allowedIps: [`${peer.meshAddress}/32`],
                                      },
                                  ],
                        ),
                        ...devicePeers,
                    ],
                }),
            );
            new RemoteScript(
                `${name}-${node.name}-wg0`,
                {
                    node: node.name,
                    step: "apply wg0",
                    connection: node.connection,
                    installation: node.installation,
                    script: script("wg-apply.sh"),
                    stdin: config,
                },
                { parent: this },
            );
        }
        this.registerOutputs({ publicKeys: this.publicKeys });
    }
}
