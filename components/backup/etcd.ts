// K3s's own etcd snapshots on every server: a schedule and a retention, and with a target the S3 bucket they
// go to, path-style, with its credentials in a 0600 drop-in of K3s's config — never on a command line. Servers
// are set one at a time: each restarts K3s, and etcd keeps its quorum while one member restarts.
import * as pulumi from "@pulumi/pulumi";
import { RemoteScript } from "../../lib/remote-script";
import { scriptsIn } from "../../lib/scripts";
import type { ClusterNode } from "../infra/nodes";

const script = scriptsIn(__dirname);

/** Where K3s keeps its etcd snapshots on each server. */
export const ETCD_SNAPSHOT_DIR = "/var/lib/rancher/k3s/server/db/snapshots";
/** A stack's folder of etcd snapshots in the backup target. */
export const etcdFolder = (stack: string) => `${stack}/etcd`;

/** An S3 bucket outside the cluster; the credentials are secrets. */
export interface BackupTarget {
    readonly endpoint: string;
    readonly bucket: string;
    readonly region: string;
    readonly accessKeyId: pulumi.Input<string>;
    readonly secretAccessKey: pulumi.Input<string>;
}

export interface EtcdSnapshotsArgs {
    /** The K3s servers (etcd members) that stay. */
    readonly servers: readonly ClusterNode[];
    /** Five cron fields, e.g. "0 *\/6 * * *". */
    readonly schedule: string;
    /** Snapshots kept (K3s prunes older ones, locally and in the bucket). */
    readonly retention: number;
    /** The bucket's folder for this stack's snapshots, e.g. "<stack>/etcd". */
    readonly folder: string;
    /** Without one, the snapshots stay on each server's own disk. */
    readonly target?: BackupTarget;
    /** What must be done first: K3s installed on the servers (each step restarts it). */
    readonly after: readonly pulumi.Resource[];
}

/** The drop-in's YAML; secret when it holds the target's credentials. */
export function etcdSnapshotSettings(args: Omit<EtcdSnapshotsArgs, "servers" | "after">): pulumi.Output<string> {
    const lines = [
        `etcd-snapshot-schedule-cron: ${JSON.stringify(args.schedule)}`,
        `etcd-snapshot-retention: ${args.retention}`,
        "etcd-snapshot-compress: true",
    ];
    const { target } = args;
    if (!target) return pulumi.output(`${lines.join("\n")}\n`);
    lines.push(
        "etcd-s3: true",
        `etcd-s3-endpoint: ${JSON.stringify(new URL(target.endpoint).host)}`,
        `etcd-s3-bucket: ${JSON.stringify(target.bucket)}`,
        `etcd-s3-region: ${JSON.stringify(target.region)}`,
        `etcd-s3-folder: ${JSON.stringify(args.folder)}`,
        'etcd-s3-bucket-lookup-type: "path"',
    );
    return pulumi.secret(
        pulumi
            .all([target.accessKeyId, target.secretAccessKey])
            .apply(([id, key]) =>
                [
                    ...lines,
                    `etcd-s3-access-key: ${JSON.stringify(id)}`,
                    `etcd-s3-secret-key: ${JSON.stringify(key)}`,
                    "",
                ].join("\n"),
            ),
    );
}

export class EtcdSnapshots extends pulumi.ComponentResource {
    constructor(name: string, args: EtcdSnapshotsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:backup:EtcdSnapshots", name, {}, opts);
        const settings = etcdSnapshotSettings(args);
        let previous: pulumi.Resource | undefined;
        for (const server of args.servers) {
            previous = new RemoteScript(
                `${name}-${server.name}`,
                {
                    node: server.name,
                    step: "configure etcd snapshots",
                    connection: server.connection,
                    installation: server.installation,
                    script: script("etcd-snapshots.sh"),
                    stdin: settings,
                    secretIo: true,
                    deleteScript: script("etcd-snapshots.sh"),
                },
                { parent: this, dependsOn: previous ? [previous] : [...args.after] },
            );
        }
        this.registerOutputs({});
    }
}
