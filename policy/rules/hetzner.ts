// Hetzner servers: labelled so a family sees what is theirs; control planes that survive losing a location.
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";

const serverType = "hcloud:index/server:Server";

export const hetznerServersLabelled: ResourceValidationPolicy = {
    name: "hetzner-servers-labelled",
    description: "Every Hetzner server carries the project's 'stack' and 'role' labels.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        if (args.type !== serverType) return;
        const labels = (args.props.labels ?? {}) as Record<string, string>;
        const missing = ["stack", "role"].filter((l) => !labels[l]);
        if (missing.length) reportViolation(`server has no ${missing.join(", ")} label`);
    },
};

export const controlPlaneSpread: StackValidationPolicy = {
    name: "control-plane-spread",
    description: "Enough Hetzner control-plane servers, spread over enough locations (prod: 3 over 2).",
    enforcementLevel: "mandatory",
    configSchema: {
        properties: {
            minServers: { type: "integer", minimum: 1, default: 1 },
            minLocations: { type: "integer", minimum: 1, default: 1 },
        },
    },
    validateStack: (args, reportViolation) => {
        const servers = args.resources.filter(
            (r) => r.type === serverType && (r.props.labels as Record<string, string> | undefined)?.role === "server",
        );
        if (servers.length === 0) return; // bare metal: the family's own machines
        const { minServers = 1, minLocations = 1 } = args.getConfig<{ minServers?: number; minLocations?: number }>();
        const locations = new Set(servers.map((s) => s.props.location as string));
        if (servers.length < minServers) {
            reportViolation(`${servers.length} control-plane server(s); this stack needs at least ${minServers}`);
        }
        if (locations.size < minLocations) {
            reportViolation(
                `control plane in ${locations.size} location(s); this stack needs at least ${minLocations}`,
            );
        }
    },
};
