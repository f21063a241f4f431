// Nodes on Hetzner Cloud: a key to reach them, a private network, placement groups that spread them over
// hosts, servers round-robin over the locations, and firewalls that open only what a node must offer the
// internet. Nothing here reads from the Hetzner API, so a preview needs no token.
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { meshAddressOf } from "../../lib/mesh-addresses";
import type { ClusterNode, NodeRole } from "./nodes";

/** How many servers of one role, of which type, and how many of the last are leaving. */
export interface HetznerServerGroup {
    readonly count: number;
    /** A Hetzner server type such as cx32. */
    readonly serverType: string;
    /** The last `leaving` of the group are on their way out (step one of scaling down). */
    readonly leaving: number;
}

/** Which servers to run on Hetzner Cloud, and where. */
export interface HetznerSettings {
    /** Locations the servers are spread over, round-robin (fsn1, nbg1, hel1, …). */
    readonly locations: readonly string[];
    readonly networkZone: string;
    /** The OS image, e.g. debian-12. */
    readonly image: string;
    /** K3s servers (control plane and etcd), the first one bootstrapping etcd; agents are workers. */
    readonly servers: HetznerServerGroup;
    readonly agents: HetznerServerGroup;
}

export interface HetznerNodesArgs {
    readonly settings: HetznerSettings;
    /** The mesh's CIDR: each server's mesh address is a hash of its name into it. */
    readonly meshCidr: string;
    /** WireGuard's UDP port, opened in the firewall. */
    readonly wireguardPort: number;
    /** Where SSH may come from; nothing else reaches port 22. */
    readonly adminCidrs: readonly string[];
    /** Both halves of a configured key; neither, and a key is generated and kept in the (encrypted) state. */
    readonly sshPrivateKey?: pulumi.Input<string>;
    readonly sshPublicKey?: string;
}

/** Hetzner's private network for the servers; the mesh runs on top, so these addresses matter little. */
export const privateNetwork = { range: "10.0.0.0/16", subnet: "10.0.1.0/24" };
/** Hetzner places at most this many servers in one spread placement group. */
export const spreadGroupSize = 10;
const world = ["0.0.0.0/0", "::/0"];

interface PlannedServer {
    name: string;
    role: NodeRole;
    location: string;
    serverType: string;
    /** The server's fixed address in the private network: servers from .11, agents from .101. */
    privateIp: string;
    /** Index of the spread placement group within its role. */
    spreadGroup: number;
    leaving: boolean;
}

/** Which servers a stack's settings ask for, each fixed by its name, so adding agents moves no one. */
function planServers(settings: HetznerSettings): PlannedServer[] {
    const subnetBase = privateNetwork.subnet.split(".").slice(0, 3).join(".");
    const plan = (
        role: NodeRole,
        { count, serverType, leaving }: { count: number; serverType: string; leaving: number },
        firstHost: number,
    ): PlannedServer[] =>
        Array.from({ length: count }, (_, i) => ({
            name: `${role}-${i + 1}`,
            role,
            location: settings.locations[i % settings.locations.length],
            serverType,
            privateIp: `${subnetBase}.${firstHost + i}`,
            spreadGroup: Math.floor(i / spreadGroupSize),
            leaving: i >= count - leaving,
        }));
    return [...plan("server", settings.servers, 11), ...plan("agent", settings.agents, 101)];
}

export class HetznerNodes extends pulumi.ComponentResource {
    readonly nodes: ClusterNode[];
    /** The private key Pulumi reaches the servers with (secret). */
    readonly sshPrivateKey: pulumi.Output<string>;

    constructor(name: string, args: HetznerNodesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:infra:HetznerNodes", name, {}, opts);
        if (args.sshPrivateKey !== undefined && args.sshPublicKey === undefined) {
            throw new Error(
                "peoples-cloud:sshPublicKey is required with peoples-cloud:sshPrivateKey on Hetzner: " +
                    'set it to the public half (pulumi config set peoples-cloud:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)")',
            );
        }
        const parent = { parent: this };
        const stack = pulumi.getStack();
        const labels = (role?: NodeRole) => ({ stack, "managed-by": "peoples-cloud", ...(role ? { role } : {}) });

        let publicKey: pulumi.Input<string>;
        if (args.sshPrivateKey !== undefined && args.sshPublicKey !== undefined) {
            this.sshPrivateKey = pulumi.secret(args.sshPrivateKey);
            publicKey = args.sshPublicKey;
        } else {
            const key = new tls.PrivateKey(`${name}-ssh`, { algorithm: "ED25519" }, parent);
            this.sshPrivateKey = pulumi.secret(key.privateKeyOpenssh);
            publicKey = key.publicKeyOpenssh;
        }
        const sshKey = new hcloud.SshKey(
            `${name}-ssh`,
            { name: `${stack}-peoples-cloud`, publicKey, labels: labels() },
            parent,
        );

        const network = new hcloud.Network(
            `${name}-network`,
            { name: `${stack}-peoples-cloud`, ipRange: privateNetwork.range, labels: labels() },
            parent,
        );
        const networkId = network.id.apply(Number);
        const subnet = new hcloud.NetworkSubnet(
            `${name}-subnet`,
            {
                networkId,
                type: "cloud",
                networkZone: args.settings.networkZone,
                ipRange: privateNetwork.subnet,
            },
            parent,
        );

        const firewall = (suffix: string, rules: hcloud.types.input.FirewallRule[]) =>
            new hcloud.Firewall(
                `${name}-${suffix}`,
                { name: `${stack}-peoples-cloud-${suffix}`, rules, labels: labels() },
                parent,
            );
        const baseFirewall = firewall("base", [
            {
                description: "WireGuard mesh",
                direction: "in",
                protocol: "udp",
                port: String(args.wireguardPort),
                sourceIps: world,
            },
            {
                description: "SSH from admins",
                direction: "in",
                protocol: "tcp",
                port: "22",
                sourceIps: [...args.adminCidrs],
            },
            { description: "ping", direction: "in", protocol: "icmp", sourceIps: world },
        ]);
        const ingressFirewall = firewall("ingress", [
            { description: "HTTP (ACME, redirects)", direction: "in", protocol: "tcp", port: "80", sourceIps: world },
            { description: "HTTPS", direction: "in", protocol: "tcp", port: "443", sourceIps: world },
        ]);
        const firewallId = (f: hcloud.Firewall) => f.id.apply(Number);

        const groups = new Map<string, hcloud.PlacementGroup>();
        const spreadGroup = (role: NodeRole, index: number) => {
            const key = `${role}s-${index + 1}`;
            if (!groups.has(key)) {
                groups.set(
                    key,
                    new hcloud.PlacementGroup(
                        `${name}-${key}`,
                        { name: `${stack}-peoples-cloud-${key}`, type: "spread", labels: labels(role) },
                        parent,
                    ),
                );
            }
            return groups.get(key)!.id.apply(Number);
        };

        this.nodes = planServers(args.settings).map((planned) => {
            const ingress = planned.role === "server";
            const server = new hcloud.Server(
                `${name}-${planned.name}`,
                {
                    name: `${stack}-${planned.name}`,
                    serverType: planned.serverType,
                    image: args.settings.image,
                    location: planned.location,
                    sshKeys: [sshKey.id],
                    placementGroupId: spreadGroup(planned.role, planned.spreadGroup),
                    firewallIds: [baseFirewall, ...(ingress ? [ingressFirewall] : [])].map(firewallId),
                    networks: [{ networkId, ip: planned.privateIp }],
                    publicNets: [{ ipv4Enabled: true, ipv6Enabled: true }],
                    labels: labels(planned.role),
                },
                // Hetzner attaches a server to a network only once the subnet exists. Its SSH keys only
                // matter at creation: a new key must not replace (wipe) running servers.
                { parent: this, dependsOn: [subnet], ignoreChanges: ["sshKeys"] },
            );
            return {
                name: planned.name,
                role: planned.role,
                publicAddress: server.ipv4Address,
                meshAddress: meshAddressOf(planned.name, args.meshCidr),
                ingress,
                ...(planned.leaving ? { leaving: true } : {}),
                connection: pulumi.secret(
                    pulumi
                        .all([server.ipv4Address, this.sshPrivateKey])
                        .apply(([host, privateKey]) => ({ host, port: 22, user: "root", privateKey })),
                ),
            };
        });
        this.registerOutputs({ sshPrivateKey: this.sshPrivateKey });
    }
}
