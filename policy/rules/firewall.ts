// Hetzner firewalls: nothing of the cluster's control plane or Vault faces the internet; SSH only from admins.
import type { ResourceValidationPolicy } from "@pulumi/policy";

interface FirewallRule {
    direction?: string;
    protocol?: string;
    port?: string;
    sourceIps?: string[];
}

const world = new Set(["0.0.0.0/0", "::/0"]);

/** Ports a K3s node or Vault must never open to the world, by what they serve. */
export const clusterPorts: { name: string; from: number; to: number }[] = [
    { name: "K3s API", from: 6443, to: 6443 },
    { name: "etcd", from: 2379, to: 2380 },
    { name: "kubelet", from: 10250, to: 10250 },
    { name: "Vault", from: 8200, to: 8201 },
];

/** The port range of a Hetzner rule ("22", "2379-2380", "any"), or undefined for none. */
function portRange(rule: FirewallRule): [number, number] | undefined {
    if (rule.protocol !== "tcp" && rule.protocol !== "udp") return undefined;
    if (!rule.port || rule.port === "any") return [1, 65535];
    const [from, to = from] = rule.port.split("-").map(Number);
    return [from, to];
}

function worldOpenRanges(props: Record<string, unknown>): [number, number][] {
    const rules = (props.rules as FirewallRule[] | undefined) ?? [];
    return rules
        .filter((r) => r.direction === "in" && (r.sourceIps ?? []).some((ip) => world.has(ip)))
        .map(portRange)
        .filter((r): r is [number, number] => r !== undefined);
}

export const firewallNoClusterPortsToInternet: ResourceValidationPolicy = {
    name: "firewall-no-cluster-ports-to-internet",
    description: "No Hetzner firewall rule opens the K3s API, etcd, kubelet or Vault to the internet.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        if (args.type !== "hcloud:index/firewall:Firewall") return;
        for (const [from, to] of worldOpenRanges(args.props)) {
            for (const p of clusterPorts.filter((c) => c.from <= to && from <= c.to)) {
                reportViolation(`opens ${p.name} (${p.from === p.to ? p.from : `${p.from}-${p.to}`}) to the internet`);
            }
        }
    },
};

export const firewallSshNotOpenToWorld: ResourceValidationPolicy = {
    name: "firewall-ssh-not-open-to-world",
    description: "SSH is reachable only from the configured admin CIDRs, not from the whole internet.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        if (args.type !== "hcloud:index/firewall:Firewall") return;
        if (worldOpenRanges(args.props).some(([from, to]) => from <= 22 && 22 <= to)) {
            reportViolation("opens SSH (22) to the whole internet; list admin CIDRs in peoples-cloud:adminCidrs");
        }
    },
};
