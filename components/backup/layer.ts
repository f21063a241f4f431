// The backup layer: what a restore needs, kept on a schedule. K3s's etcd snapshots on every server, to the
// stack's S3 target when it has one; Vault's raft snapshots by a CronJob (services/vault-backup), encrypted, to
// the target or, without one, to the platform's own storage backend. What a restore needs besides the snapshots
// — the K3s token, Vault's unseal keys, the apps' keys, the snapshots' key — is in Pulumi's encrypted state.
import * as pulumi from "@pulumi/pulumi";
import type { AppsLayer } from "../apps/layer";
import type { FoundationLayer } from "../foundation/layer";
import type { K3sCluster } from "../infra/k3s";
import type { ClusterNode } from "../infra/nodes";
import type { VaultLayer } from "../vault/layer";
import { ETCD_SNAPSHOT_DIR, etcdFolder, EtcdSnapshots, type BackupTarget } from "./etcd";
import { VaultSnapshots } from "./vault";
import { DEFAULT_BACKUP_BUCKET } from "./vault-manifests";

export interface BackupLayerArgs {
    /** The stack's name: its snapshots' folder in the target. */
    readonly stack: string;
    /** The cluster, installed first: its servers' K3s restarts with the snapshot settings. */
    readonly cluster: K3sCluster;
    /** The K3s servers that stay. */
    readonly servers: readonly ClusterNode[];
    /** An S3 bucket outside the cluster; without one, etcd's snapshots stay on the servers' own disks. */
    readonly target?: BackupTarget;
    readonly etcd: { readonly schedule: string; readonly retention: number };
    /** The foundation: its internal CA issuer (the job checks Vault with it), ready first. */
    readonly foundation: FoundationLayer;
    /** Vault: snapshotted, and holding the job's identity and secrets. */
    readonly vault: VaultLayer;
    /**
     * The apps layer, in place first (the Vault Secrets Operator's CRDs, the storage backend serving); its
     * storage backend is where Vault's snapshots go without a target.
     */
    readonly apps: AppsLayer;
    /** Vault's snapshots: cron schedule (UTC), backups kept, and the job's image (none: not deployed). */
    readonly vaultSnapshots: { readonly schedule: string; readonly keep: number; readonly image?: string };
}

/** Where Vault's snapshots go: what a restore reads them from. */
export interface VaultSnapshotsLocation {
    endpoint: string;
    bucket: string;
    region: string;
    /** The folder in the bucket, ending in `/`. */
    prefix: string;
    /** SeaweedFS in the cluster (reach it through the cluster), not a bucket outside it. */
    inCluster: boolean;
}

export class BackupLayer extends pulumi.ComponentResource {
    /** Where the etcd snapshots go, for the stack's outputs. */
    readonly etcdSnapshots: string;
    readonly vaultSnapshots: VaultSnapshotsLocation;
    /** Secret: the key Vault's snapshots are encrypted with, base64. */
    readonly backupKey: pulumi.Output<string>;
    /** Secret: the credentials of the bucket the snapshots go to (a restore reads them with these). */
    readonly backupCredentials: pulumi.Output<{ accessKeyId: string; secretAccessKey: string }>;

    constructor(name: string, args: BackupLayerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:backup:BackupLayer", name, {}, opts);
        const folder = etcdFolder(args.stack);
        const { target } = args;
        const { backend } = args.apps;
        if (!target) {
            void pulumi.log.warn(
                "backup.target is not set: etcd snapshots stay on the K3s servers' own disks, and Vault's snapshots " +
                    `go to the platform's own storage (${backend.inCluster ? "SeaweedFS in the cluster" : backend.endpoint}, ` +
                    `bucket ${DEFAULT_BACKUP_BUCKET}). That protects against mistakes, not against losing the ` +
                    "cluster; give an S3 bucket outside it (README: Backups).",
                this,
            );
        }
        new EtcdSnapshots(
            `${name}-etcd`,
            { servers: args.servers, ...args.etcd, folder, target, after: [args.cluster] },
            { parent: this },
        );
        this.etcdSnapshots = target
            ? `s3://${target.bucket}/${folder} at ${target.endpoint}`
            : `${ETCD_SNAPSHOT_DIR} on each server`;

        this.vaultSnapshots = {
            ...(target
                ? { endpoint: target.endpoint, bucket: target.bucket, region: target.region, inCluster: false }
                : {
                      endpoint: backend.endpoint,
                      bucket: DEFAULT_BACKUP_BUCKET,
                      region: backend.region,
                      inCluster: backend.inCluster,
                  }),
            prefix: `${args.stack}/vault/`,
        };
        const credentials = target
            ? { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey }
            : backend.credentials;
        this.backupCredentials = pulumi.secret(
            pulumi
                .all([credentials.accessKeyId, credentials.secretAccessKey])
                .apply(([accessKeyId, secretAccessKey]) => ({ accessKeyId, secretAccessKey })),
        );
        const vault = new VaultSnapshots(
            `${name}-vault`,
            {
                cluster: args.cluster,
                vault: args.vault,
                internalCaIssuer: args.foundation.issuers.internalCa,
                after: [...args.foundation.ready, args.apps],
                target: {
                    ...this.vaultSnapshots,
                    createBucket: !target,
                    credentials,
                },
                ...args.vaultSnapshots,
            },
            { parent: this },
        );
        this.backupKey = vault.key;
        this.registerOutputs({ etcdSnapshots: this.etcdSnapshots, vaultSnapshots: this.vaultSnapshots });
    }
}
