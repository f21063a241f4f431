// The whole platform as one function, so `index.ts` (the CLI's entry) and the Automation API (tests, per-family
// stacks) run the very same program. Config flows one way: the stack's settings are loaded and validated once,
// mapped here to each layer's own Args, and the layers are composed in order, each fed the previous layer's
// typed outputs: infra -> foundation -> vault -> apps. A layer appears here once it is built. `platform(config)`
// takes an already loaded configuration only for tests that must get past the schema (the pack's last line).
import * as pulumi from "@pulumi/pulumi";
import { AppsLayer, type AppsLayerArgs } from "./components/apps/layer";
import { BackupLayer, type BackupLayerArgs, type VaultSnapshotsLocation } from "./components/backup/layer";
import { publishedImages } from "./components/apps/versions";
import { FoundationLayer, type FoundationLayerArgs, type IssuerNames } from "./components/foundation/layer";
import type { K3sCluster } from "./components/infra/k3s";
import { InfraLayer, type InfraLayerArgs } from "./components/infra/layer";
import type { ClusterNode, NodeRole } from "./components/infra/nodes";
import { STORAGE_SERVICES } from "./components/vault/config";
import { VaultLayer, type VaultLayerArgs } from "./components/vault/layer";
import { meshAddressOf } from "./lib/mesh-addresses";
import type { SshConnection } from "./lib/ssh";
import { loadConfig, type PlatformConfig } from "./stacks/config";

export interface PlatformOutputs {
    stack: string;
    nodeProvider: string;
    nodes: { name: string; role: NodeRole; meshAddress: string; publicAddress: pulumi.Input<string> }[];
    meshCidr: string;
    /** WireGuard's UDP port on every node. */
    meshPort: number;
    /** The family's devices in the mesh: each made its own key; only the public half is here. */
    devices: { name: string; owner: string; publicKey: string; meshAddress: string }[];
    /** Node name -> WireGuard public key, for the operators' devices to add as peers. */
    meshPublicKeys: pulumi.Output<Record<string, string>>;
    k3sVersion: string;
    /** The K3s servers that stay, the cluster's first server first, with their SSH connections (secret): `restore` reaches them. */
    serverAccess?: pulumi.Output<{ name: string; connection: SshConnection }[]>;
    /** The K3s agents that stay, with their SSH connections (secret): `restore` restarts those on new machines. */
    agentAccess?: pulumi.Output<{ name: string; connection: SshConnection }[]>;
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
    /** The storage services' public endpoints; absent with K3s switched off. */
    storage?: {
        backend: string;
        s3Endpoint: pulumi.Output<string>;
        kvEndpoint: pulumi.Output<string>;
        services: string[];
    };
    /**
     * Where the backups go; absent with K3s switched off. `vault`: the bucket and folder of Vault's encrypted
     * snapshots (`inCluster`: SeaweedFS's gateway, reached only from inside the cluster).
     */
    backup?: { etcdSnapshots: string; vault: VaultSnapshotsLocation };
    /** Secret: the 32-byte key Vault's snapshots are encrypted with, base64; a restore needs it. */
    backupKey?: pulumi.Output<string>;
    /** Secret: the credentials of the bucket Vault's snapshots go to. */
    backupCredentials?: pulumi.Output<{ accessKeyId: string; secretAccessKey: string }>;
    /** Each member's S3 access key id, its secret and document-store token (both secret). */
    members?: Record<
        string,
        { accessKeyId: string; secretAccessKey: pulumi.Output<string>; kvToken: pulumi.Output<string> }
    >;
}

/** The infra layer's Args from the stack's settings and secrets. */
export function infraArgs({ settings, secrets }: PlatformConfig): InfraLayerArgs {
    return {
        nodes: settings.nodes,
        mesh: settings.mesh,
        adminCidrs: settings.adminCidrs,
        devices: settings.devices,
        ...(settings.k3s.enabled ? { k3s: settings.k3s } : {}),
        sshPrivateKey: secrets.sshPrivateKey,
        sshPublicKey: settings.sshPublicKey,
        hcloudToken: secrets.hcloudToken,
    };
}

/** The foundation layer's Args: the infra layer's cluster and the stack's domain and certificate settings. */
export function foundationArgs({ settings, stack }: PlatformConfig, cluster: K3sCluster): FoundationLayerArgs {
    return { cluster, stack, domain: settings.domain, acmeEmail: settings.acmeEmail, tlsIssuer: settings.tlsIssuer };
}

/** The Vault layer's Args: the cluster, its size, the foundation, the unseal key split, the apps Vault serves. */
export function vaultArgs(
    { settings }: PlatformConfig,
    infra: InfraLayer,
    foundation: FoundationLayer,
): VaultLayerArgs {
    if (!infra.cluster) throw new Error("the Vault layer needs the K3s cluster");
    return {
        cluster: infra.cluster,
        nodeCount: infra.clusterNodes.length,
        foundation,
        keyShares: settings.vault.keyShares,
        keyThreshold: settings.vault.keyThreshold,
        apps: STORAGE_SERVICES,
    };
}

/** The apps layer's Args: the backend (with the stack's secret credentials for a provider), members, images. */
export function appsArgs(
    { settings, secrets }: PlatformConfig,
    infra: InfraLayer,
    foundation: FoundationLayer,
    vault: VaultLayer,
): AppsLayerArgs {
    if (!infra.cluster) throw new Error("the apps layer needs the K3s cluster");
    const { storage } = settings;
    if (storage.backend === "external" && !secrets.s3Credentials) {
        throw new Error("the external storage backend needs peoples-cloud:s3AccessKeyId and s3SecretAccessKey");
    }
    return {
        cluster: infra.cluster,
        nodeCount: infra.clusterNodes.length,
        foundation,
        vault,
        storage:
            storage.backend === "external"
                ? { ...storage, credentials: secrets.s3Credentials! }
                : { backend: storage.backend, size: storage.size },
        members: settings.members,
        images: {
            storageS3Api: settings.apps.images.storageS3Api ?? publishedImages.storageS3Api,
            storageKvApi: settings.apps.images.storageKvApi ?? publishedImages.storageKvApi,
        },
    };
}

/**
 * The backup layer's Args: the K3s servers, the stack's target with its secret credentials, the schedules, and
 * for Vault's snapshots the layers below (Vault, the foundation's CA, the apps layer's storage backend, which is
 * the target without one) and the job's image.
 */
export function backupArgs(
    { settings, secrets, stack }: PlatformConfig,
    infra: InfraLayer,
    foundation: FoundationLayer,
    vault: VaultLayer,
    apps: AppsLayer,
): BackupLayerArgs {
    const { target, etcd } = settings.backup;
    if (target && !secrets.backupCredentials) {
        throw new Error("backup.target needs peoples-cloud:backupAccessKeyId and backupSecretAccessKey");
    }
    if (!infra.cluster) throw new Error("the backup layer needs the K3s cluster");
    return {
        stack,
        cluster: infra.cluster,
        servers: infra.clusterNodes.filter((n) => n.role === "server" && !n.leaving),
        etcd,
        ...(target ? { target: { ...target, ...secrets.backupCredentials! } } : {}),
        foundation,
        vault,
        apps,
        vaultSnapshots: {
            ...settings.backup.vault,
            image: settings.apps.images.vaultBackup ?? publishedImages.vaultBackup,
        },
    };
}

/** Nodes' names and SSH connections, as one secret output. */
function accessOf(nodes: ClusterNode[]): pulumi.Output<{ name: string; connection: SshConnection }[]> {
    return pulumi.secret(
        pulumi.all(nodes.map((n) => n.connection.apply((connection) => ({ name: n.name, connection })))),
    );
}

export function platform(config: PlatformConfig = loadConfig()): PlatformOutputs {
    const { settings } = config;
    // Component names are part of every resource's URN: they never change (the foundation's is "crds").
    const infra = new InfraLayer("infra", infraArgs(config));
    const foundation = infra.cluster && new FoundationLayer("crds", foundationArgs(config, infra.cluster));
    const vault = foundation && new VaultLayer("vault", vaultArgs(config, infra, foundation));
    const apps = vault && new AppsLayer("apps", appsArgs(config, infra, foundation, vault));
    const backup = apps && new BackupLayer("backup", backupArgs(config, infra, foundation, vault, apps));
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
        meshPort: settings.mesh.port,
        devices: settings.devices.map((d) => ({ ...d, meshAddress: meshAddressOf(d.name, settings.mesh.cidr) })),
        meshPublicKeys: infra.meshPublicKeys,
        k3sVersion: settings.k3s.version,
        ...(infra.cluster
            ? {
                  serverAccess: accessOf(infra.clusterNodes.filter((n) => n.role === "server")),
                  agentAccess: accessOf(infra.clusterNodes.filter((n) => n.role === "agent")),
                  kubernetesApi: infra.cluster.apiEndpoint,
                  kubeconfig: infra.cluster.kubeconfig,
              }
            : {}),
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
        ...(apps
            ? {
                  storage: {
                      backend: settings.storage.backend,
                      s3Endpoint: apps.s3Endpoint,
                      kvEndpoint: apps.kvEndpoint,
                      services: apps.services,
                  },
                  members: apps.members,
              }
            : {}),
        ...(backup
            ? {
                  backup: { etcdSnapshots: backup.etcdSnapshots, vault: backup.vaultSnapshots },
                  backupKey: backup.backupKey,
                  backupCredentials: backup.backupCredentials,
              }
            : {}),
    };
}
