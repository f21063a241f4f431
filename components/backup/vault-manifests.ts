// Vault's scheduled snapshots as Kubernetes objects and a Vault policy, pure functions of their settings, so the
// unit tests read exactly what a node receives: the `backup` namespace with the job's service account and the
// internal CA, the network policies, the CronJob running services/vault-backup, and the PrometheusRule that
// makes a failed or missing backup loud.
import { type KubeObject, labels } from "../../lib/kube";
import { longestIntervalSeconds } from "../../lib/cron";
import {
    anywhere,
    appLabel,
    type Container,
    CREATE_BUCKET_SCRIPT,
    denyIngress,
    dnsEgress,
    env,
    hardened,
    inNamespace,
    meta as metaIn,
    mount,
    networkPolicy,
    nonRootPod,
    type PodSpec,
    secretVolume,
    type StoragePeer,
    tcp,
    tmpVolume,
    vaultCaCertificate,
    vaultEgress,
    vaultLoginVolume,
} from "../../lib/workloads";
import { NAMESPACE as STORAGE_NAMESPACE } from "../apps/pods";
import { SEAWEEDFS_NAME, SEAWEEDFS_S3_PORT } from "../apps/seaweedfs";
import type { AppIdentity } from "../vault/config";
import { DEFAULT_MOUNTS, type Mounts, rule } from "../vault/policies";

export const BACKUP_NAMESPACE = "backup";
/** The job's name everywhere: its service account, Vault role and policy, KV folder, CronJob. */
export const VAULT_BACKUP = "vault-backup";
/** The bucket of the default target (the platform's own storage backend). */
export const DEFAULT_BACKUP_BUCKET = "peoples-cloud-backups";

/** The job's Vault identity: its service account in `backup`, bound by a Kubernetes auth role of its name. */
export const VAULT_BACKUP_IDENTITY: AppIdentity = {
    name: VAULT_BACKUP,
    namespace: BACKUP_NAMESPACE,
    serviceAccount: VAULT_BACKUP,
    transitKey: false,
};

/** The Kubernetes Secrets the Vault Secrets Operator writes in `backup`, and the files in them. */
export const BACKUP_SECRETS = {
    key: "vault-backup-key",
    target: "vault-backup-target",
    /** The internal CA (its `ca.crt`), from a certificate cert-manager issues in the namespace. */
    vaultCa: "vault-ca",
} as const;
export const BACKUP_FILES = { key: "backup.key", credentials: "credentials.json" } as const;

/** The files of the job's two Vault KV secrets (each synced into one Kubernetes Secret), as the job reads them. */
export const backupSecretFiles = {
    /** `apps/vault-backup/key`: the snapshots' 32-byte key, base64. */
    key: (base64: string) => ({ [BACKUP_FILES.key]: base64 }),
    /** `apps/vault-backup/target`: the target's credentials as `BACKUP_CREDENTIALS_FILE` holds them. */
    target: (c: { accessKeyId: string; secretAccessKey: string }) => ({
        [BACKUP_FILES.credentials]: JSON.stringify({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }),
    }),
};

/**
 * The job's policy: a raft snapshot (`GET sys/storage/raft/snapshot`; `sys/leader` needs no token) and its own
 * KV folder, which the Vault Secrets Operator reads as this role. Not `snapshot-force`, no other secret.
 */
export function vaultBackupPolicy(mounts: Mounts = DEFAULT_MOUNTS): string {
    return [
        rule("sys/storage/raft/snapshot", ["read"]),
        rule(`${mounts.kv}/data/apps/${VAULT_BACKUP}/*`, ["read"]),
        rule(`${mounts.kv}/metadata/apps/${VAULT_BACKUP}/*`, ["read", "list"]),
    ].join("\n\n");
}

const meta = (name: string, extra: Record<string, string> = {}) => metaIn(BACKUP_NAMESPACE, name, extra);
const jobLabel = appLabel(VAULT_BACKUP);

/** The namespace, the job's service account and the certificate whose `ca.crt` the job checks Vault with. */
export function backupNamespaceObjects(internalCaIssuer: string): KubeObject[] {
    return [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: BACKUP_NAMESPACE, labels }, spec: undefined },
        { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(VAULT_BACKUP), spec: undefined },
        vaultCaCertificate(BACKUP_NAMESPACE, BACKUP_SECRETS.vaultCa, internalCaIssuer),
    ];
}

/**
 * Nothing reaches the job; it reaches only DNS, Vault's API and the target. With SeaweedFS as the target, a
 * policy in its namespace lets the job in on the S3 port (the apps layer lets only storage-s3-api in).
 */
export function backupNetworkPolicies(target: StoragePeer, vaultNamespace: string): KubeObject[] {
    const seaweed = appLabel(SEAWEEDFS_NAME);
    return [
        denyIngress(BACKUP_NAMESPACE),
        networkPolicy(BACKUP_NAMESPACE, VAULT_BACKUP, jobLabel, {
            policyTypes: ["Ingress", "Egress"],
            ingress: [],
            egress: [
                dnsEgress,
                vaultEgress(vaultNamespace),
                target.inCluster
                    ? { to: [inNamespace(STORAGE_NAMESPACE, seaweed)], ports: [tcp(SEAWEEDFS_S3_PORT)] }
                    : { to: anywhere, ports: [tcp(target.port)] },
            ],
        }),
        ...(target.inCluster
            ? [
                  networkPolicy(STORAGE_NAMESPACE, `${SEAWEEDFS_NAME}-from-${VAULT_BACKUP}`, seaweed, {
                      policyTypes: ["Ingress"],
                      ingress: [{ from: [inNamespace(BACKUP_NAMESPACE, jobLabel)], ports: [tcp(SEAWEEDFS_S3_PORT)] }],
                  }),
              ]
            : []),
    ];
}

export interface VaultBackupJobSettings {
    readonly image: string;
    /** Five cron fields, UTC. */
    readonly schedule: string;
    /** Backups kept in the bucket. */
    readonly keep: number;
    /** Vault's active server (the job asks it for the leader and snapshots that one). */
    readonly vaultAddress: string;
    readonly target: {
        readonly endpoint: string;
        readonly region: string;
        readonly bucket: string;
        readonly prefix: string;
    };
    /** Make the bucket first (the platform's own backend); a family's own target has its bucket already. */
    readonly createBucket: boolean;
}

const SECRETS_DIR = "/run/secrets/peoples-cloud";
const VAULT_DIR = "/run/secrets/vault";
/** A run that hangs (a server that never answers) ends as a failed Job. */
export const JOB_DEADLINE_SECONDS = 1800;

/** The job's pod: settings from the environment, the key and the target's credentials as files. */
export function vaultBackupPod(s: VaultBackupJobSettings): PodSpec {
    const key = `${SECRETS_DIR}/key`;
    const target = `${SECRETS_DIR}/target`;
    const resources = { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } };
    const createBucket: Container = {
        name: "create-bucket",
        image: s.image,
        command: ["node", "-e", CREATE_BUCKET_SCRIPT],
        env: env({
            STORAGE_S3_ENDPOINT: s.target.endpoint,
            S3_REGION: s.target.region,
            BUCKET: s.target.bucket,
            S3_CREDENTIALS_FILE: `${target}/${BACKUP_FILES.credentials}`,
        }),
        volumeMounts: [mount("target", target)],
        resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
        securityContext: hardened,
    };
    return {
        serviceAccountName: VAULT_BACKUP,
        // Only Vault's token, projected for its audience; not the API's default one.
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 30,
        restartPolicy: "Never",
        securityContext: nonRootPod,
        ...(s.createBucket ? { initContainers: [createBucket] } : {}),
        containers: [
            {
                name: VAULT_BACKUP,
                image: s.image,
                env: env({
                    VAULT_ADDR: s.vaultAddress,
                    VAULT_AUTH_MOUNT: "kubernetes",
                    VAULT_AUTH_ROLE: VAULT_BACKUP,
                    VAULT_JWT_FILE: `${VAULT_DIR}/token`,
                    NODE_EXTRA_CA_CERTS: `${VAULT_DIR}/ca.crt`,
                    BACKUP_ENDPOINT: s.target.endpoint,
                    BACKUP_REGION: s.target.region,
                    BACKUP_BUCKET: s.target.bucket,
                    BACKUP_PREFIX: s.target.prefix,
                    BACKUP_CREDENTIALS_FILE: `${target}/${BACKUP_FILES.credentials}`,
                    BACKUP_KEY_FILE: `${key}/${BACKUP_FILES.key}`,
                    BACKUP_KEEP: String(s.keep),
                }),
                volumeMounts: [
                    mount("key", key),
                    mount("target", target),
                    mount("vault", VAULT_DIR),
                    mount("tmp", "/tmp", false),
                ],
                // The snapshot is held in memory while it is checked and encrypted (a family's: a few MB).
                resources,
                securityContext: hardened,
            },
        ],
        volumes: [
            secretVolume("key", BACKUP_SECRETS.key),
            secretVolume("target", BACKUP_SECRETS.target),
            vaultLoginVolume("vault", BACKUP_SECRETS.vaultCa),
            tmpVolume,
        ],
    };
}

/**
 * One backup at a time; a failed run is retried twice, then the Job fails and stays (with the last three
 * failed and successful ones) for `kubectl logs` and kube-state-metrics; no TTL removes it.
 */
export function vaultBackupCronJob(s: VaultBackupJobSettings): KubeObject {
    return {
        apiVersion: "batch/v1",
        kind: "CronJob",
        metadata: meta(VAULT_BACKUP, jobLabel),
        spec: {
            schedule: s.schedule,
            timeZone: "Etc/UTC",
            concurrencyPolicy: "Forbid",
            // A run missed by more than this (the controller down) is skipped, not started late.
            startingDeadlineSeconds: 3600,
            successfulJobsHistoryLimit: 3,
            failedJobsHistoryLimit: 3,
            jobTemplate: {
                metadata: { labels: { ...labels, ...jobLabel } },
                spec: {
                    backoffLimit: 2,
                    activeDeadlineSeconds: JOB_DEADLINE_SECONDS,
                    template: { metadata: { labels: { ...labels, ...jobLabel } }, spec: vaultBackupPod(s) },
                },
            },
        },
    };
}

export interface AlertRule {
    alert: string;
    expr: string;
    for?: string;
    labels: Record<string, string>;
    annotations: { summary: string; description: string };
}

/**
 * Two alerts on kube-state-metrics' series, so a backup that fails is loud:
 * - VaultBackupFailed: a Job of the CronJob that finished with failed pods (none left running) started after
 *   the last successful backup — or there has been none yet;
 * - VaultBackupMissing: no successful backup for twice the schedule's longest interval, counted from the last
 *   success or, before any, from the CronJob's creation (it also catches a schedule that stopped running).
 */
export function vaultBackupAlertRules(schedule: string): AlertRule[] {
    const interval = longestIntervalSeconds(schedule);
    if (interval === undefined) throw new Error(`vault-backup: '${schedule}' is not a schedule this reads`);
    const stale = 2 * interval;
    const ns = `namespace="${BACKUP_NAMESPACE}"`;
    const jobs = `{${ns}, job_name=~"${VAULT_BACKUP}-[0-9]+"}`;
    const cronjob = `{${ns}, cronjob="${VAULT_BACKUP}"}`;
    const lastSuccess = `max by (namespace) (kube_cronjob_status_last_successful_time${cronjob})`;
    return [
        {
            alert: "VaultBackupFailed",
            expr: [
                `max by (namespace) (`,
                `  kube_job_status_start_time${jobs}`,
                `  and on (namespace, job_name) (kube_job_status_failed${jobs} > 0)`,
                `  unless on (namespace, job_name) (kube_job_status_active${jobs} > 0)`,
                `)`,
                `> on (namespace) (`,
                `  ${lastSuccess}`,
                `  or max by (namespace) (kube_cronjob_info${cronjob}) * 0`,
                `)`,
            ].join("\n"),
            labels: { severity: "critical" },
            annotations: {
                summary: "Vault's backup failed",
                description:
                    `The last ${VAULT_BACKUP} Job in namespace ${BACKUP_NAMESPACE} failed: Vault has no new backup. ` +
                    `Its log names the step that failed: kubectl -n ${BACKUP_NAMESPACE} logs job/<the failed job>.`,
            },
        },
        {
            alert: "VaultBackupMissing",
            expr: [
                `time() - ${lastSuccess} > ${stale}`,
                `or (`,
                `  time() - max by (namespace) (kube_cronjob_created${cronjob}) > ${stale}`,
                `  unless on (namespace) ${lastSuccess}`,
                `)`,
            ].join("\n"),
            labels: { severity: "critical" },
            annotations: {
                summary: "Vault has no recent backup",
                description:
                    `No ${VAULT_BACKUP} Job has succeeded for more than ${stale / 3600} hours (twice the schedule ` +
                    `'${schedule}'): Vault's newest backup is that old, or there is none.`,
            },
        },
    ];
}

/** The rules for the prometheus-operator (its CRDs come with the foundation). */
export function vaultBackupPrometheusRule(schedule: string): KubeObject {
    return {
        apiVersion: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        metadata: meta(VAULT_BACKUP, jobLabel),
        spec: { groups: [{ name: VAULT_BACKUP, rules: vaultBackupAlertRules(schedule) }] },
    };
}
