// The apps layer: the storage backend (SeaweedFS in the cluster, or a provider's S3), storage-s3-api and
// storage-kv-api. Every key they use is generated once (kept in Pulumi's encrypted state), written to Vault's KV
// under the service's own folder, and reaches the pods only as files the Vault Secrets Operator syncs from
// there: never in a manifest, chart values, a command line or a log. The workloads reach the cluster as K3s
// manifests on the first server, as the layers below do (see the README's "Apps").
import * as pulumi from "@pulumi/pulumi";
import { SERVICE_ACCESS_KEY_IDS } from "../../lib/access-keys";
import { K3sManifests } from "../../lib/k3s-manifests";
import { RandomToken } from "../../lib/random-token";
import { VaultWrite } from "../../lib/vault/writes";
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
    secretSyncObjects,
    serviceMonitor,
    serviceReplicas,
    type SyncedSecret,
    vaultCaCertificate,
    workloadObjects,
} from "./manifests";
import { FILES, HTTP_PORT, kvApiPod, NAMESPACE, OPS_PORT, s3ApiPod, SECRETS, type Service } from "./pods";
import { SEAWEEDFS_S3_CONFIG_SECRET, SEAWEEDFS_S3_ENDPOINT, seaweedfsChart, seaweedfsS3Config } from "./seaweedfs";

/** S3 credentials, secret. */
export interface S3Credentials {
    readonly accessKeyId: pulumi.Input<string>;
    readonly secretAccessKey: pulumi.Input<string>;
}

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

export interface MemberCredentials {
    /** The member's S3 access key id (its name) and secret (secret). */
    accessKeyId: string;
    secretAccessKey: pulumi.Output<string>;
    /** Bearer token for storage-kv-api (secret). */
    kvToken: pulumi.Output<string>;
}

/** The access key id storage-kv-api uses with storage-s3-api; no member may be named so (stacks/schema.ts). */
const KV_API_KEY_ID = SERVICE_ACCESS_KEY_IDS.storageKvApi;

const hexToBase64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

export class AppsLayer extends pulumi.ComponentResource {
    /** Path-style S3 (https://s3.<domain>/<bucket>/<key>) and the document store. */
    readonly s3Endpoint: pulumi.Output<string>;
    readonly kvEndpoint: pulumi.Output<string>;
    readonly members: Record<string, MemberCredentials>;
    /** The services deployed: a service whose image is not known yet is left out. */
    readonly services: Service[];

    constructor(name: string, args: AppsLayerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:apps:AppsLayer", name, {}, opts);
        const k3s = new K3sManifests(this, name, args.cluster.firstServer);
        const { kv } = DEFAULT_MOUNTS;
        const random = (suffix: string, bytes: number, protect = false) =>
            new RandomToken(`${name}-${suffix}`, { bytes }, { parent: this, protect });

        // Generated once; a re-run never changes them. Losing the name key loses every object's name, and the
        // ETag key every client's ETags: they are protected from a destroy.
        const etagKey = random("etag-key", 32, true);
        const nameKey = random("name-key", 32, true);
        const kvApiS3Secret = random("kv-api-s3-secret", 20);
        const kvApiSecretKey = random("kv-api-secret-key", 32);
        this.members = Object.fromEntries(
            args.members.map((member) => [
                member,
                {
                    accessKeyId: member,
                    secretAccessKey: pulumi.secret(random(`member-${member}-s3-secret`, 20).value),
                    kvToken: pulumi.secret(random(`member-${member}-kv-token`, 32).value),
                },
            ]),
        );
        const backendCredentials: S3Credentials =
            args.storage.backend === "external"
                ? args.storage.credentials
                : {
                      accessKeyId: random("seaweedfs-access-key-id", 10).value.apply((v) => v.toUpperCase()),
                      secretAccessKey: random("seaweedfs-secret-key", 20).value,
                  };

        // Each Vault KV secret holds the files of one Kubernetes Secret, written with the admin token after
        // Vault's configuration (its policies let each service read only its own folder). As with transit keys,
        // no run deletes them (no delete path): the ETag and name keys are what the stored data depends on.
        const kvWrites: VaultWrite[] = [];
        const store = (service: Service, path: string, files: Record<string, pulumi.Input<string>>) => {
            const write = new VaultWrite(
                `${name}-kv-${service}-${path}`,
                {
                    operator: args.vault.operator,
                    token: args.vault.adminToken,
                    path: `${kv}/data/apps/${service}/${path}`,
                    // A secret Output: the whole data is kept encrypted in the state.
                    data: pulumi.secret(pulumi.all(files).apply((data) => ({ data }))),
                },
                { parent: this, dependsOn: [args.vault.configuration] },
            );
            kvWrites.push(write);
        };
        const accessKeys = pulumi
            .all(Object.values(this.members).map((m) => pulumi.all([m.accessKeyId, m.secretAccessKey])))
            .apply((pairs) => Object.fromEntries(pairs));
        store("storage-s3-api", "keys", {
            [FILES.accessKeys]: pulumi
                .all([accessKeys, kvApiS3Secret.value])
                .apply(([keys, kvSecret]) => JSON.stringify({ ...keys, [KV_API_KEY_ID]: kvSecret })),
            [FILES.etagKey]: etagKey.value.apply(hexToBase64),
            [FILES.nameKey]: nameKey.value.apply(hexToBase64),
        });
        const credentialsJson = pulumi
            .all([backendCredentials.accessKeyId, backendCredentials.secretAccessKey])
            .apply(([accessKeyId, secretAccessKey]) => ({ accessKeyId, secretAccessKey }));
        store("storage-s3-api", "backend", {
            [FILES.backendCredentials]: credentialsJson.apply((c) => JSON.stringify(c)),
        });
        if (args.storage.backend === "seaweedfs") {
            store("storage-s3-api", "seaweedfs", { seaweedfs_s3_config: credentialsJson.apply(seaweedfsS3Config) });
        }
        const tokens = pulumi
            .all(Object.entries(this.members).map(([member, m]) => m.kvToken.apply((t) => [t, member] as const)))
            .apply((pairs) => JSON.stringify(Object.fromEntries(pairs)));
        store("storage-kv-api", "keys", {
            [FILES.s3Credentials]: kvApiS3Secret.value.apply((secretAccessKey) =>
                JSON.stringify({ accessKeyId: KV_API_KEY_ID, secretAccessKey }),
            ),
            [FILES.tokens]: tokens,
            [FILES.secretKey]: kvApiSecretKey.value.apply(hexToBase64),
        });

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
            [...namespaceObjects(), vaultCaCertificate(foundation.issuers.internalCa)],
            [...foundation.ready],
        );
        const network = k3s.write(
            "storage-network",
            networkPolicies(
                args.storage.backend === "seaweedfs"
                    ? { inCluster: true }
                    : { inCluster: false, port: Number(new URL(args.storage.endpoint).port || 443) },
                VAULT_NAMESPACE,
            ),
            [namespace],
        );
        const operatorReady = k3s.wait(
            "secrets-operator",
            { K3S_WAIT_CRDS: "vaultauths.secrets.hashicorp.com vaultstaticsecrets.secrets.hashicorp.com" },
            [args.vault.secretsOperator],
        );
        const secrets = k3s.write("storage-secrets", secretSyncObjects(kv, "kubernetes", synced), [
            namespace,
            operatorReady,
            ...kvWrites,
        ]);
        const secretsReady = k3s.wait(
            "storage-secrets",
            {
                K3S_WAIT_SECRETS: synced.map((s) => `${NAMESPACE}/${s.secretName}`).join(" "),
                K3S_WAIT_CERTIFICATES: `${NAMESPACE}/${SECRETS.vaultCa}`,
            },
            [secrets],
        );

        const beforeServices = [secretsReady, network];
        let backendEndpoint: string;
        let backendRegion: string;
        if (args.storage.backend === "seaweedfs") {
            const chart = k3s.write("seaweedfs", [seaweedfsChart(args.nodeCount, args.storage.size)], [secretsReady]);
            beforeServices.push(k3s.wait("seaweedfs", { K3S_WAIT_DEPLOYMENTS: `${NAMESPACE}/seaweedfs-s3` }, [chart]));
            backendEndpoint = SEAWEEDFS_S3_ENDPOINT;
            backendRegion = "us-east-1";
        } else {
            backendEndpoint = args.storage.endpoint;
            backendRegion = args.storage.region;
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
                          backendEndpoint,
                          backendRegion,
                          vaultAddress: args.vault.address,
                          vaultAuthMount: "kubernetes",
                          vaultAuthRole: "storage-s3-api",
                          transitKey: "storage-s3-api",
                      }),
                  })
                : []),
            ...(this.services.includes("storage-s3-api") ? [serviceMonitor()] : []),
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
