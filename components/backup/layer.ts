// The backup layer: what a restore needs, kept on a schedule. Today: K3s's etcd snapshots on every server, to
// the stack's S3 target when it has one. What a restore needs besides the snapshots — the K3s token, Vault's
// unseal keys, the apps' keys — is in Pulumi's encrypted state.
import * as pulumi from "@pulumi/pulumi";
import type { K3sCluster } from "../infra/k3s";
import type { ClusterNode } from "../infra/nodes";
import { ETCD_SNAPSHOT_DIR, etcdFolder, EtcdSnapshots, type BackupTarget } from "./etcd";

export interface BackupLayerArgs {
    /** The stack's name: its snapshots' folder in the target. */
    readonly stack: string;
    /** The cluster, installed first: its servers' K3s restarts with the snapshot settings. */
    readonly cluster: K3sCluster;
    /** The K3s servers that stay. */
    readonly servers: readonly ClusterNode[];
    /** An S3 bucket outside the cluster; without one, snapshots stay on the servers' own disks. */
    readonly target?: BackupTarget;
    readonly etcd: { readonly schedule: string; readonly retention: number };
}

export class BackupLayer extends pulumi.ComponentResource {
    /** Where the etcd snapshots go, for the stack's outputs. */
    readonly etcdSnapshots: string;

    constructor(name: string, args: BackupLayerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:backup:BackupLayer", name, {}, opts);
        const folder = etcdFolder(args.stack);
        if (!args.target) {
            void pulumi.log.warn(
                "backup.target is not set: etcd snapshots stay on the K3s servers' own disks. That protects against " +
                    "mistakes, not against losing the cluster; give an S3 bucket outside it (README: Backups).",
                this,
            );
        }
        new EtcdSnapshots(
            `${name}-etcd`,
            { servers: args.servers, ...args.etcd, folder, target: args.target, after: [args.cluster] },
            { parent: this },
        );
        this.etcdSnapshots = args.target
            ? `s3://${args.target.bucket}/${folder} at ${args.target.endpoint}`
            : `${ETCD_SNAPSHOT_DIR} on each server`;
        this.registerOutputs({ etcdSnapshots: this.etcdSnapshots });
    }
}
