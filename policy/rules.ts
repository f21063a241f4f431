// Every rule of the pack, for index.ts and for tests (which must not import index.ts: a PolicyPack starts a server).
import { firewallNoClusterPortsToInternet, firewallSshNotOpenToWorld } from "./rules/firewall";
import { controlPlaneSpread, hetznerServersLabelled } from "./rules/hetzner";
import { k3sSecretsEncryption } from "./rules/k3s";
import { helmChartsPinned, imagesPinned } from "./rules/pinning";
import { noPlaintextSecrets } from "./rules/secrets";
import { vaultProviderVerifiesTls, vaultRaftReplicas } from "./rules/vault";
import { workloadsBoundedResources, workloadsNonRoot, workloadsReadOnlyRoot } from "./rules/workloads";

export const policies = [
    firewallNoClusterPortsToInternet,
    firewallSshNotOpenToWorld,
    helmChartsPinned,
    imagesPinned,
    workloadsBoundedResources,
    workloadsNonRoot,
    workloadsReadOnlyRoot,
    noPlaintextSecrets,
    vaultProviderVerifiesTls,
    vaultRaftReplicas,
    k3sSecretsEncryption,
    hetznerServersLabelled,
    controlPlaneSpread,
];
