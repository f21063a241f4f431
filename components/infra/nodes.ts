// The one shape every node provider produces: after this step nothing knows whether Hetzner made a node or a
// family listed it in its config.
import * as pulumi from "@pulumi/pulumi";
import { meshAddressOf } from "../../lib/mesh-addresses";
import type { SshConnection } from "../../lib/ssh";

export type NodeRole = "server" | "agent";

export interface ClusterNode {
    name: string;
    /** "server": K3s control plane and etcd member; "agent": a worker. */
    role: NodeRole;
    /** Where Pulumi's SSH and the other nodes' WireGuard reach this node. */
    publicAddress: pulumi.Input<string>;
    /** This node's address in the mesh, stable however other nodes come and go. */
    meshAddress: string;
    /** Takes ingress traffic (80/443). */
    ingress: boolean;
    /** On its way out: still in the mesh, no longer in the cluster (drained and removed). */
    leaving?: boolean;
    connection: pulumi.Output<SshConnection>;
    /** The generation of the machine's installation (lib/node-installation.ts), once the infra layer knows it. */
    installation?: pulumi.Output<number>;
}

/** A machine a family runs itself, reached over SSH. */
export interface BareMetalHostArgs {
    /** Its name in the mesh and the cluster (a DNS label). */
    readonly name: string;
    /** Where SSH and the other nodes' WireGuard reach it: an IP address or a DNS name. */
    readonly address: string;
    readonly user: string;
    readonly port: number;
    readonly role: NodeRole;
    /** On its way out: drained and taken out of K3s while the mesh still reaches it. */
    readonly leaving: boolean;
}

/** The hosts a bare-metal stack lists, reached over SSH with the stack's secret key. */
export function bareMetalNodes(
    hosts: readonly BareMetalHostArgs[],
    meshCidr: string,
    sshPrivateKey: pulumi.Input<string>,
): ClusterNode[] {
    return hosts.map((host) => ({
        name: host.name,
        role: host.role,
        publicAddress: host.address,
        meshAddress: meshAddressOf(host.name, meshCidr),
        ingress: host.role === "server",
        ...(host.leaving ? { leaving: true } : {}),
        connection: pulumi.secret(
            pulumi.output(sshPrivateKey).apply((privateKey) => ({
                host: host.address,
                port: host.port,
                user: host.user,
                privateKey,
            })),
        ),
    }));
}
