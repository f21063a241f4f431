// Vault: reached with verified TLS, and highly available where the stack asks for it.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import * as yaml from "js-yaml";
import { k3sManifestObjects } from "./k3s";

export const vaultProviderVerifiesTls: ResourceValidationPolicy = {
    name: "vault-provider-verifies-tls",
    description:
        "The Vault provider verifies Vault's TLS certificate (skipping it is allowed only where configured, dev).",
    enforcementLevel: "mandatory",
    configSchema: { properties: { allowSkipTlsVerify: { type: "boolean", default: false } } },
    validateResource: (args, reportViolation) => {
        if (args.type !== "pulumi:providers:vault") return;
        const { allowSkipTlsVerify = false } = args.getConfig<{ allowSkipTlsVerify?: boolean }>();
        const skip = args.props.skipTlsVerify === true || args.props.skipTlsVerify === "true";
        if (skip && !allowSkipTlsVerify)
            reportViolation("skipTlsVerify is on; give the provider the internal CA instead");
    },
};

interface VaultValues {
    server?: { ha?: { enabled?: boolean; replicas?: number; raft?: { enabled?: boolean } } };
}

/** The chart values of a Vault install, whichever resource installs the chart. */
function vaultValues(type: string, props: Record<string, unknown>): VaultValues | undefined {
    if (
        (type === "kubernetes:helm.sh/v3:Release" || type === "kubernetes:helm.sh/v4:Chart") &&
        props.chart === "vault"
    ) {
        return props.values ?? {};
    }
    const helmCharts = type === "kubernetes:helm.cattle.io/v1:HelmChart" ? [props] : k3sManifestObjects(type, props);
    for (const chart of helmCharts) {
        const spec = (chart.spec ?? {}) as { chart?: string; valuesContent?: string };
        if (chart !== props && chart.kind !== "HelmChart") continue;
        if (spec.chart === "vault") return (yaml.load(spec.valuesContent ?? "") as VaultValues | undefined) ?? {};
    }
    return undefined;
}

export const vaultRaftReplicas: ResourceValidationPolicy = {
    name: "vault-raft-replicas",
    description: "Vault runs integrated raft storage with at least the configured number of replicas (3 in prod).",
    enforcementLevel: "mandatory",
    configSchema: { properties: { minReplicas: { type: "integer", minimum: 1, default: 1 } } },
    validateResource: (args, reportViolation) => {
        const values = vaultValues(args.type, args.props);
        if (!values) return;
        const { minReplicas = 1 } = args.getConfig<{ minReplicas?: number }>();
        const ha = values.server?.ha;
        const replicas = ha?.enabled ? (ha.replicas ?? 3) : 1;
        if (replicas < minReplicas)
            reportViolation(`Vault runs ${replicas} replica(s); this stack needs ${minReplicas}`);
        if (minReplicas > 1 && ha?.raft?.enabled !== true) reportViolation("Vault's HA mode does not use raft storage");
    },
};
