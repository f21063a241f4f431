// Vault's raft snapshots on a schedule: services/vault-backup as a CronJob in the namespace `backup`. The job's
// Vault identity (a snapshot-only policy, a Kubernetes auth role for its service account) is written with the
// admin token after Vault's configuration; its encryption key (32 random bytes, made once, protected) and the
// target's credentials go into Vault's KV under `apps/vault-backup/` and reach the pod only as files the Vault
// Secrets Operator syncs from there, as the apps' keys do. The CronJob and its alerts are written only once its
// image is known.
import * as pulumi from "@pulumi/pulumi";
import { K3sManifests } from "../../lib/k3s-manifests";
import { RandomToken } from "../../lib/random-token";
import { storagePeer, type SyncedSecret, writeSyncedSecrets } from "../../lib/workloads";
import { VaultWrite } from "../../lib/vault/writes";
import type { S3Credentials } from "../apps/layer";
import type { K3sCluster } from "../infra/k3s";
import { kubernetesAuthRole } from "../vault/config";
import type { VaultLayer } from "../vault/layer";
import { VAULT_NAMESPACE } from "../vault/manifests";
import { DEFAULT_MOUNTS } from "../vault/policies";
import {
    BACKUP_NAMESPACE,
    BACKUP_SECRETS,
    backupNamespaceObjects,
    backupNetworkPolicies,
    backupSecretFiles,
    VAULT_BACKUP,
    VAULT_BACKUP_IDENTITY,
    vaultBackupCronJob,
    vaultBackupPolicy,
    vaultBackupPrometheusRule,
} from "./vault-manifests";

/** Where the snapshots go. */
export interface VaultSnapshotTarget {
    readonly endpoint: string;
    readonly region: string;
    readonly bucket: string;
    /** The folder in the bucket, ending in `/`. */
    readonly prefix: string;
    /** SeaweedFS in the cluster: reached through its network policy, the bucket made by the job. */
    readonly inCluster: boolean;
    /** The platform's own storage backend, whose bucket the job makes; a family's own target has its bucket. */
    readonly createBucket: boolean;
    /** Secret. */
    readonly credentials: S3Credentials;
}

export interface VaultSnapshotsArgs {
    /** The cluster: the manifests are written on its first server. */
    readonly cluster: K3sCluster;
    /** Vault: its configuration done first, its admin token writes the identity and the KV secrets. */
    readonly vault: VaultLayer;
    /** The foundation's internal CA issuer: the certificate whose `ca.crt` the job checks Vault with. */
    readonly internalCaIssuer: string;
    /** What must be in place first: the foundation ready, the apps layer (the operator's CRDs, the backend). */
    readonly after: readonly pulumi.Resource[];
    readonly target: VaultSnapshotTarget;
    /** Five cron fields, UTC. */
    readonly schedule: string;
    /** Backups kept in the bucket. */
    readonly keep: number;
    /** services/vault-backup's image pinned by digest; without one the CronJob is not deployed. */
    readonly image?: string;
}

export class VaultSnapshots extends pulumi.ComponentResource {
    /** Secret: the 32-byte key the snapshots are encrypted with, base64 (a restore needs it). */
    readonly key: pulumi.Output<string>;

    constructor(name: string, args: VaultSnapshotsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:backup:VaultSnapshots", name, {}, opts);
        const { vault } = args;
        const { kv } = DEFAULT_MOUNTS;
        const write = (
            suffix: string,
            path: string,
            data: pulumi.Input<Record<string, unknown>>,
            after: pulumi.Resource[],
            owned = true,
        ) =>
            new VaultWrite(
                `${name}-${suffix}`,
                {
                    operator: vault.operator,
                    token: vault.adminToken,
                    path,
                    data,
                    ...(owned ? { deletePath: path } : {}),
                },
                { parent: this, dependsOn: after },
            );

        const policy = write("policy", `sys/policies/acl/${VAULT_BACKUP}`, { policy: vaultBackupPolicy() }, [
            vault.configuration,
        ]);
        const role = write("role", `auth/kubernetes/role/${VAULT_BACKUP}`, kubernetesAuthRole(VAULT_BACKUP_IDENTITY), [
            vault.configuration,
            policy,
        ]);

        // Made once; losing it loses every backup made with it: protected from a destroy.
        const key = new RandomToken(`${name}-key`, { bytes: 32 }, { parent: this, protect: true });
        this.key = pulumi.secret(key.value.apply((hex) => Buffer.from(hex, "hex").toString("base64")));
        // As the apps' keys: no run deletes them from Vault (no delete path).
        const store = (suffix: string, path: string, files: pulumi.Input<Record<string, string>>) =>
            write(
                `kv-${suffix}`,
                `${kv}/data/apps/${VAULT_BACKUP}/${path}`,
                pulumi.secret(pulumi.output(files).apply((data) => ({ data }))),
                [vault.configuration],
                false,
            );
        const kvWrites = [
            store("key", "key", this.key.apply(backupSecretFiles.key)),
            store(
                "target",
                "target",
                pulumi
                    .all([args.target.credentials.accessKeyId, args.target.credentials.secretAccessKey])
                    .apply(([accessKeyId, secretAccessKey]) =>
                        backupSecretFiles.target({ accessKeyId, secretAccessKey }),
                    ),
            ),
        ];

        const k3s = new K3sManifests(this, name, args.cluster.firstServer);
        const synced: SyncedSecret[] = [
            { service: VAULT_BACKUP, vaultPath: "key", secretName: BACKUP_SECRETS.key, restart: [] },
            { service: VAULT_BACKUP, vaultPath: "target", secretName: BACKUP_SECRETS.target, restart: [] },
        ];
        const namespace = k3s.write("backup-namespace", backupNamespaceObjects(args.internalCaIssuer), [...args.after]);
        const network = k3s.write("backup-network", backupNetworkPolicies(storagePeer(args.target), VAULT_NAMESPACE), [
            namespace,
        ]);
        const secretsReady = writeSyncedSecrets(
            k3s,
            "backup-secrets",
            { namespace: BACKUP_NAMESPACE, kvMount: kv, synced, caSecret: BACKUP_SECRETS.vaultCa },
            [namespace, role, ...kvWrites],
        );

        if (args.image) {
            const settings = {
                image: args.image,
                schedule: args.schedule,
                keep: args.keep,
                vaultAddress: vault.activeAddress,
                target: args.target,
                createBucket: args.target.createBucket,
            };
            k3s.write(
                "backup-job",
                [vaultBackupCronJob(settings), vaultBackupPrometheusRule(args.schedule)],
                [secretsReady, network],
            );
        } else {
            void pulumi.log.warn(
                "vault-backup has no published image yet: Vault is not backed up until peoples-cloud:apps.images." +
                    "vaultBackup is set (its identity, key and secrets are in place)",
                this,
            );
        }
        this.registerOutputs({ key: this.key });
    }
}
