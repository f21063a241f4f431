// The whole platform as one function, so `index.ts` (the CLI's entry) and the Automation API (tests, per-family
// stacks) run the very same program. Layers are composed in order, each fed the previous layer's typed outputs:
// infra -> crds -> vault -> apps. A layer appears here once it is built.
import { loadConfig } from "./stacks/config";

export interface PlatformOutputs {
    stack: string;
    nodeProvider: string;
    nodeCount: number;
    meshCidr: string;
    k3sVersion: string;
}

export function platform(): PlatformOutputs {
    const config = loadConfig();
    const { settings } = config;
    const nodes = settings.nodes;
    return {
        stack: config.stack,
        nodeProvider: nodes.provider,
        nodeCount: nodes.provider === "hetzner" ? nodes.servers.count + nodes.agents.count : nodes.hosts.length,
        meshCidr: settings.mesh.cidr,
        k3sVersion: settings.k3s.version,
    };
}
