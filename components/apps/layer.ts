// The apps layer: the storage backend (SeaweedFS in the cluster, or a provider's S3), storage-s3-api and
// storage-kv-api. Every key they use is generated once (kept in Pulumi's encrypted state), written to Vault's KV
// under the service's own folder, and reaches the pods only as files the Vault Secrets Operator syncs from
// there: never in a manifest, chart values, a command line or a log. The workloads reach the cluster as K3s
// manifests on the first server, as the layers below do (see the README's "Apps").
import * as pulumi from "@pulumi/pulumi";
import { K3sManifests } from "../../lib/k3s-manifests";
import { storagePeer, type SyncedSecret, vaultCaCertificate, writeSyncedSecrets } from "../../lib/workloads";
import type { FoundationLayer } from "../foundation/layer";
import type { K3sCluster } from "../infra/k3s";
import type { VaultLayer } from "../vault/layer";
import { VAULT_NAMESPACE } from "../vault/manifests";
import { DEFAULT_MOUNTS } from "../vault/policies";
import {
    hostsFor,
    ingresses,
    namespaceObjects,
    networkPolicies,
    serviceMonitor,
    serviceReplicas,
    workloadObjects,
} from "./manifests";
import { HTTP_PORT, kvApiPod, NAMESPACE, OPS_PORT, s3ApiPod, SECRETS, type Service } from "./pods";
import { SEAWEEDFS_S3_CONFIG_SECRET, SEAWEEDFS_S3_ENDPOINT, seaweedfsChart } from "./seaweedfs";
import { type MemberCredentials, type S3Credentials, storeAppSecrets } from "./secrets";

export type { MemberCredentials, S3Credentials };

export type StorageBackend =
    /** SeaweedFS in the cluster; `size` is each volume server's volume. */
    | { readonly backend: "seaweedfs"; readonly size: string }
    /** A provider's S3 at `endpoint` (https), with the stack's secret credentials. */
    | {
          readonly backend: "external";
          readonly endpoint: string;
          readonly region: string;
          readonly credentials: S3Credentials;
      };

/** The storage backend as a client in the cluster reaches it (the backup layer's default target). */
export interface BackendAccess {
    /** SeaweedFS's S3 gateway in the cluster, or the provider's https endpoint. */
    readonly endpoint: string;
    readonly region: string;
    /** SeaweedFS in the cluster: only pods its network policies let in reach it. */
    readonly inCluster: boolean;
    /** Its admin credentials (secret): SeaweedFS's generated identity, or the provider's. */
    readonly credentials: S3Credentials;
}

export interface AppsLayerArgs {
    /** The cluster; the manifests are written on its first server. */
    readonly cluster: K3sCluster;
    /** How many nodes it has: replicas and replication follow (see seaweedfsLayout and serviceReplicas). */
    readonly nodeCount: number;
    /** Ingress class, domain, issuers; the layer starts once the foundation is ready. */
    readonly foundation: FoundationLayer;
    /** Vault: its KV takes the keys (written with the admin token), its operator syncs them into the namespace. */
    readonly vault: VaultLayer;
    readonly storage: StorageBackend;
    /** The family's members: one S3 access key and one document-store token each. */
    readonly members: readonly string[];
    /** The services' images, pinned by digest; a service without one is not deployed (none published yet). */
    readonly images: { readonly storageS3Api?: string; readonly storageKvApi?: string };
}

export class AppsLayer extends pulumi.ComponentResource {
    /** Path-style S3 (https://s3.<domain>/<bucket>/<key>) and the document store. */
    readonly s3Endpoint: pulumi.Output<string>;
    readonly kvEndpoint: pulumi.Output<string>;
    readonly members: Record<string, MemberCredentials>;
    /** The services deployed: a service whose image is not known yet is left out. */
    readonly services: Service[];
    readonly backend: BackendAccess;

    constructor(name: string, args: AppsLayerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:apps:AppsLayer", name, {}, opts);
        const k3s = new K3sManifests(this, name, args.cluster.firstServer);
        const { kv } = DEFAULT_MOUNTS;
        const keys = storeAppSecrets(this, name, {
            operator: args.vault.operator,
            token: args.vault.adminToken,
            after: [args.vault.configuration],
            members: args.members,
            backend: args.storage.backend === "external" ? args.storage.credentials : "seaweedfs",
        });
        this.members = keys.members;
        this.backend = {
            ...(args.storage.backend === "seaweedfs"
                ? { endpoint: SEAWEEDFS_S3_ENDPOINT, region: "us-east-1", inCluster: true }
                : { endpoint: args.storage.endpoint, region: args.storage.region, inCluster: false }),
            credentials: keys.backend,
        };
        const kvWrites = keys.writes;

        const images = args.images;
        this.services = [
            ...(images.storageS3Api ? (["storage-s3-api"] as const) : []),
            ...(images.storageKvApi && images.storageS3Api ? (["storage-kv-api"] as const) : []),
        ];
        if (this.services.length < 2) {
            void pulumi.log.warn(
                "storage-s3-api and storage-kv-api have no published image yet: set peoples-cloud:apps.images " +
                    `(deployed now: ${this.services.join(", ") || "neither"}; storage-kv-api needs storage-s3-api)`,
                this,
            );
        }

        const deployed = (service: Service) => (this.services.includes(service) ? [service] : []);
        const synced: SyncedSecret[] = [
            {
                service: "storage-s3-api",
                vaultPath: "keys",
                secretName: SECRETS.s3Keys,
                restart: deployed("storage-s3-api"),
            },
            {
                service: "storage-s3-api",
                vaultPath: "backend",
                secretName: SECRETS.s3Backend,
                restart: deployed("storage-s3-api"),
            },
            ...(args.storage.backend === "seaweedfs"
                ? [
                      {
                          service: "storage-s3-api" as const,
                          vaultPath: "seaweedfs",
                          secretName: SEAWEEDFS_S3_CONFIG_SECRET,
                          restart: [],
                      },
                  ]
                : []),
            {
                service: "storage-kv-api",
                vaultPath: "keys",
                secretName: SECRETS.kvKeys,
                restart: deployed("storage-kv-api"),
            },
        ];

        const { foundation } = args;
        const namespace = k3s.write(
            "storage-namespace",
            [...namespaceObjects(), vaultCaCertificate(NAMESPACE, SECRETS.vaultCa, foundation.issuers.internalCa)],
            [...foundation.ready],
        );
        const network = k3s.write("storage-network", networkPolicies(storagePeer(this.backend), VAULT_NAMESPACE), [
            namespace,
        ]);
        const operatorReady = k3s.wait(
            "secrets-operator",
            { K3S_WAIT_CRDS: "vaultauths.secrets.hashicorp.com vaultstaticsecrets.secrets.hashicorp.com" },
            [args.vault.secretsOperator],
        );
        const secretsReady = writeSyncedSecrets(
            k3s,
            "storage-secrets",
            { namespace: NAMESPACE, kvMount: kv, synced, caSecret: SECRETS.vaultCa },
            [namespace, operatorReady, ...kvWrites],
        );

        const beforeServices = [secretsReady, network];
        if (args.storage.backend === "seaweedfs") {
            const chart = k3s.write("seaweedfs", [seaweedfsChart(args.nodeCount, args.storage.size)], [secretsReady]);
            beforeServices.push(k3s.wait("seaweedfs", { K3S_WAIT_DEPLOYMENTS: `${NAMESPACE}/seaweedfs-s3` }, [chart]));
        }

        const replicas = serviceReplicas(args.nodeCount);
        const s3ApiUrl = `http://storage-s3-api.${NAMESPACE}.svc:${HTTP_PORT}`;
        const workloads = [
            ...(images.storageS3Api
                ? workloadObjects({
                      service: "storage-s3-api",
                      replicas,
                      ports: [
                          { name: "s3", port: HTTP_PORT },
                          { name: "ops", port: OPS_PORT },
                      ],
                      pod: s3ApiPod({
                          image: images.storageS3Api,
                          backendEndpoint: this.backend.endpoint,
                          backendRegion: this.backend.region,
                          vaultAddress: args.vault.address,
                          vaultAuthMount: "kubernetes",
                          vaultAuthRole: "storage-s3-api",
                          transitKey: "storage-s3-api",
                      }),
                  })
                : []),
            ...this.services.map(serviceMonitor),
            ...(images.storageKvApi && images.storageS3Api
                ? workloadObjects({
                      service: "storage-kv-api",
                      replicas,
                      ports: [{ name: "http", port: HTTP_PORT }],
                      pod: kvApiPod({ image: images.storageKvApi, s3Endpoint: s3ApiUrl }),
                  })
                : []),
        ];
        if (workloads.length > 0) {
            const services = k3s.write("storage-services", workloads, beforeServices);
            k3s.write(
                "storage-ingress",
                foundation.domain.apply((domain) =>
                    ingresses(domain, foundation.ingressClass, foundation.issuers.default).filter((i) =>
                        this.services.includes(i.metadata.name as Service),
                    ),
                ),
                [services],
            );
        }

        const hosts = foundation.domain.apply(hostsFor);
        this.s3Endpoint = pulumi.interpolate`https://${hosts.s3}`;
        this.kvEndpoint = pulumi.interpolate`https://${hosts.kv}`;
        this.registerOutputs({ s3Endpoint: this.s3Endpoint, kvEndpoint: this.kvEndpoint });
    }
}
