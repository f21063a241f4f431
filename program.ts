// The whole platform as one function, so `index.ts` (the CLI's entry) and the Automation API (tests, per-family
// stacks) run the very same program. Layers are composed in order, each fed the previous layer's typed outputs:
// infra -> crds -> vault -> apps. A layer appears here once it is built.
import type * as pulumi from "@pulumi/pulumi";
import { FoundationLayer, type IssuerNames } from "./components/crds/layer";
import { InfraLayer } from "./components/infra/layer";
import { STORAGE_SERVICES } from "./components/vault/config";
import { VaultLayer } from "./components/vault/layer";
import type { NodeRole } from "./components/infra/nodes";
import { loadConfig } from "./stacks/config";

export interface PlatformOutputs {
    stack: string;
    nodeProvider: string;
    nodes: { name: string; role: NodeRole; meshAddress: string; publicAddress: pulumi.Input<string> }[];
    meshCidr: string;
    /** Node name -> WireGuard public key, for the operators' devices to add as peers. */
    meshPublicKeys: pulumi.Output<Record<string, string>>;
    k3sVersion: string;
    /** The K3s API on the mesh, and its admin kubeconfig (secret); absent with K3s switched off. */
    kubernetesApi?: string;
    kubeconfig?: pulumi.Output<string>;
    /** The cluster foundation; absent with K3s switched off. */
    ingress?: { class: string; address: pulumi.Output<string>; domain: pulumi.Output<string> };
    issuers?: IssuerNames;
    internalCaCertificate?: pulumi.Output<string>;
    /** Vault, in the cluster; its admin token (day 2) and unseal keys (break-glass) are secret outputs. */
    vault?: { address: string; replicas: number; sealed: pulumi.Output<boolean[]> };
    vaultAdminToken?: pulumi.Output<string>;
    vaultUnsealKeys?: pulumi.Output<string[]>;
}

export function platform(): PlatformOutputs {
    const config = loadConfig();
    const { settings } = config;
    const infra = new InfraLayer("infra", config);
    const foundation =
        infra.cluster && new FoundationLayer("crds", { cluster: infra.cluster, settings, stack: config.stack });
    const vault =
        infra.cluster &&
        foundation &&
        new VaultLayer("vault", {
            cluster: infra.cluster,
            nodeCount: infra.clusterNodes.length,
            foundation,
            settings: settings.vault,
            apps: STORAGE_SERVICES,
        });
    return {
        stack: config.stack,
        nodeProvider: settings.nodes.provider,
        nodes: infra.nodes.map(({ name, role, meshAddress, publicAddress }) => ({
            name,
            role,
            meshAddress,
            publicAddress,
        })),
        meshCidr: settings.mesh.cidr,
        meshPublicKeys: infra.meshPublicKeys,
        k3sVersion: settings.k3s.version,
        ...(infra.cluster ? { kubernetesApi: infra.cluster.apiEndpoint, kubeconfig: infra.cluster.kubeconfig } : {}),
        ...(foundation
            ? {
                  ingress: {
                      class: foundation.ingressClass,
                      address: foundation.ingressAddress,
                      domain: foundation.domain,
                  },
                  issuers: foundation.issuers,
                  internalCaCertificate: foundation.internalCaCertificate,
              }
            : {}),
        ...(vault
            ? {
                  vault: { address: vault.address, replicas: vault.replicas, sealed: vault.sealed },
                  vaultAdminToken: vault.adminToken,
                  vaultUnsealKeys: vault.unsealKeys,
              }
            : {}),
    };
}
