// HA K3s on the mesh: the first server starts the embedded etcd cluster, the other servers join it one at a
// time, agents join as workers. Node IP, advertise and bind addresses and flannel ride on wg0; the token
// is a secret file on each node (never on a command line); the kubeconfig comes back as a secret output.
// Removing a node drains it and deletes it from the cluster (K3s then drops its etcd member) from the first
// server, then uninstalls K3s on it, before the node itself goes away. A node whose machine was reinstalled
// (its installation's generation grew) is first forgotten by the cluster — node and node password — and then
// installed and joined again under its name.
import * as pulumi from "@pulumi/pulumi";
import { RandomToken } from "../../lib/random-token";
import { RemoteScript } from "../../lib/remote-script";
import { scriptsIn } from "../../lib/scripts";
import type { ClusterNode } from "./nodes";

const script = scriptsIn(__dirname);

export const API_PORT = 6443;
const TOKEN_FILE = "/etc/rancher/k3s/cluster-token";

type ConfigValue = string | boolean | string[];

/** K3s's config.yaml for one node: what its role needs, on the mesh. The external IP is added on the node. */
export function k3sConfig(
    node: Pick<ClusterNode, "name" | "role" | "meshAddress">,
    firstServer: Pick<ClusterNode, "name" | "meshAddress">,
    servers: Pick<ClusterNode, "meshAddress">[],
    settings: K3sSettingsArgs,
): Record<string, ConfigValue> {
    const isFirst = node.name === firstServer.name;
    const config: Record<string, ConfigValue> = {
        "node-name": node.name,
        "node-ip": node.meshAddress,
        "flannel-iface": "wg0",
        "token-file": TOKEN_FILE,
        "node-label": [`peoples-cloud/role=${node.role}`],
    };
    if (!isFirst) config.server = `https://${firstServer.meshAddress}:${API_PORT}`;
    if (node.role === "agent") return withExtraArgs(config, settings.extraAgentArgs);
    if (isFirst) config["cluster-init"] = true;
    Object.assign(config, {
        "advertise-address": node.meshAddress,
        "bind-address": node.meshAddress,
        "tls-san": servers.map((s) => s.meshAddress),
        "cluster-cidr": settings.clusterCidr,
        "service-cidr": settings.serviceCidr,
        "secrets-encryption": settings.secretsEncryption,
        "write-kubeconfig-mode": "0600",
    });
    return withExtraArgs(config, settings.extraServerArgs);
}

/** `--flag=value` args on top of the computed config; a flag given twice, or a list flag, becomes a list. */
function withExtraArgs(config: Record<string, ConfigValue>, args: readonly string[]): Record<string, ConfigValue> {
    const given = new Map<string, string[]>();
    for (const arg of args) {
        const [flag, ...rest] = arg.slice(2).split("=");
        given.set(flag, [...(given.get(flag) ?? []), rest.length ? rest.join("=") : "true"]);
    }
    const out = { ...config };
    for (const [flag, values] of given) {
        const known = out[flag];
        if (Array.isArray(known) || values.length > 1) out[flag] = [...(Array.isArray(known) ? known : []), ...values];
        else out[flag] = values[0] === "true" ? true : values[0];
    }
    return out;
}

/** The config as YAML: double-quoted strings (JSON escapes are YAML's), booleans, lists of strings. */
export function renderK3sConfig(config: Record<string, ConfigValue>): string {
    return Object.entries(config)
        .map(([key, value]) =>
            Array.isArray(value)
                ? `${key}:\n${value.map((v) => `  - ${JSON.stringify(v)}`).join("\n")}`
                : `${key}: ${typeof value === "boolean" ? String(value) : JSON.stringify(value)}`,
        )
        .join("\n")
        .concat("\n");
}

/** How K3s is installed and configured on every node. */
export interface K3sSettingsArgs {
    /** The pinned K3s release, e.g. v1.33.5+k3s1. */
    readonly version: string;
    /** Pod and service networks; neither may overlap the mesh. */
    readonly clusterCidr: string;
    readonly serviceCidr: string;
    /** Encrypt Kubernetes Secrets at rest. */
    readonly secretsEncryption: boolean;
    /** Extra `--flag=value` arguments for servers and agents; flags the program manages are refused earlier. */
    readonly extraServerArgs: readonly string[];
    readonly extraAgentArgs: readonly string[];
    /** Air-gapped install from this folder on every node, instead of the pinned release's installer. */
    readonly airgapDir?: string;
}

export interface K3sClusterArgs {
    /** Servers first in the order they were listed; the first one bootstraps etcd and must stay. */
    readonly nodes: readonly ClusterNode[];
    readonly settings: K3sSettingsArgs;
}

export class K3sCluster extends pulumi.ComponentResource {
    /** The admin kubeconfig, its server on the first server's mesh address: reachable from the mesh. */
    readonly kubeconfig: pulumi.Output<string>;
    readonly apiEndpoint: string;
    /** The server that bootstrapped etcd: it stays, and the next layers' K3s manifests live on it. */
    readonly firstServer: ClusterNode;

    constructor(name: string, args: K3sClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:infra:K3sCluster", name, {}, opts);
        const servers = args.nodes.filter((n) => n.role === "server");
        const first = servers[0];
        if (!first) throw new Error("K3s needs at least one server node");
        this.firstServer = first;
        this.apiEndpoint = `https://${first.meshAddress}:${API_PORT}`;
        const token = new RandomToken(`${name}-token`, { bytes: 32 }, { parent: this });

        const install = (node: ClusterNode, after: pulumi.Resource[]) => {
            const tokenFile = new RemoteScript(
                `${name}-${node.name}-token`,
                {
                    node: node.name,
                    step: "write the K3s token",
                    connection: node.connection,
                    installation: node.installation,
                    script: script("k3s-token.sh"),
                    stdin: token.value,
                    secretIo: true,
                },
                { parent: this },
            );
            return new RemoteScript(
                `${name}-${node.name}-k3s`,
                {
                    node: node.name,
                    step: `install K3s (${node.role})`,
                    connection: node.connection,
                    installation: node.installation,
                    script: script("k3s-install.sh"),
                    env: {
                        K3S_VERSION: args.settings.version,
                        K3S_ROLE: node.role,
                        K3S_EXTERNAL_IP: node.publicAddress,
                        ...(args.settings.airgapDir ? { K3S_AIRGAP_DIR: args.settings.airgapDir } : {}),
                    },
                    stdin: renderK3sConfig(k3sConfig(node, first, servers, args.settings)),
                    deleteScript: script("k3s-uninstall.sh"),
                },
                { parent: this, dependsOn: [tokenFile, ...after] },
            );
        };

        const firstInstall = install(first, []);
        // A node on a reinstalled machine joins under its old name only once the cluster has forgotten it.
        const forgotten = (node: ClusterNode) =>
            new RemoteScript(
                `${name}-${node.name}-forget`,
                {
                    node: first.name,
                    step: `forget ${node.name}'s previous installation`,
                    connection: first.connection,
                    script: script("k3s-forget.sh"),
                    env: { K3S_NODE: node.name },
                    installation: node.installation,
                },
                { parent: this, dependsOn: [firstInstall] },
            );
        // Servers join one at a time, so etcd never has two learners at once; agents all at once after.
        let previous: pulumi.Resource = firstInstall;
        const memberOf = (node: ClusterNode, installed: pulumi.Resource) =>
            new RemoteScript(
                `${name}-${node.name}-member`,
                {
                    node: first.name,
                    step: `${node.name} joins the cluster`,
                    connection: first.connection,
                    installation: node.installation,
                    script: script("k3s-member.sh"),
                    env: { K3S_NODE: node.name },
                    deleteScript: script("k3s-drain.sh"),
                },
                { parent: this, dependsOn: [installed] },
            );
        for (const server of servers.slice(1)) {
            previous = memberOf(server, install(server, [previous, forgotten(server)]));
        }
        for (const agent of args.nodes.filter((n) => n.role === "agent")) {
            memberOf(agent, install(agent, [previous, forgotten(agent)]));
        }

        // Secret here too, not only in the state: what reads this output must not need the engine to say so.
        const kubeconfig = new RemoteScript(
            `${name}-kubeconfig`,
            {
                node: first.name,
                step: "read the kubeconfig",
                connection: first.connection,
                installation: first.installation,
                script: script("k3s-kubeconfig.sh"),
                env: { K3S_API_ADDRESS: first.meshAddress },
                keepStdout: true,
                secretIo: true,
            },
            { parent: this, dependsOn: [firstInstall] },
        );
        this.kubeconfig = pulumi.secret(kubeconfig.stdout);
        this.registerOutputs({ kubeconfig: this.kubeconfig, apiEndpoint: this.apiEndpoint });
    }
}
