// The backup layer's Vault snapshots under mocks: the job's Vault identity written after Vault's configuration,
// its key made once (protected) and, with the target's credentials, only in the secret Vault writes that store
// them, synced into `backup` as files; the CronJob and its pod, the network policies, the alerts, the default
// target (the platform's own storage) with its one warning, the stack's outputs, and the policy pack's rules.
import * as assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";
import { vaultBackupAlertRules } from "../../components/backup/vault-manifests";
import type { KubeObject } from "../../lib/kube";
import { type PodSpec, storagePeer } from "../../lib/workloads";
import { policies } from "../../policy/rules";
import type { PlatformConfig } from "../../stacks/config";
import { settingsSchema } from "../../stacks/schema";
import { composeLayers } from "../helpers/layers";
import { type RecordedResource, settled, unwrap, useMocks } from "../helpers/mocks";
import { policyConfig, resourceViolations, ruleSettings } from "../helpers/policy";
import { bareMetalNodes } from "../helpers/stackConfig";

const remoteScript = "pulumi-nodejs:dynamic/infra:RemoteScript";
const randomToken = "pulumi-nodejs:dynamic/infra:RandomToken";
const vaultWrite = "pulumi-nodejs:dynamic/vault:Write";

/** A test reference only: the digest of a label, not of any published image. */
const image = `ghcr.io/family/vault-backup@sha256:${createHash("sha256").update("test vault-backup").digest("hex")}`;
const target = { endpoint: "https://backup.example.org:9000", bucket: "smith-backups", region: "eu-central-1" };
const targetCredentials = {
    accessKeyId: "BACKUPTESTKEYID00001",
    secretAccessKey: "backup-test-secret-0123456789abcdef",
};

/** The engine's wire form of a secret value. */
const secretSig = "4dabf18193072939515e22adb298388d";
const isWireSecret = (value: unknown) =>
    typeof value === "object" && value !== null && (value as Record<string, unknown>)[secretSig] !== undefined;

interface Options {
    nodes?: number;
    withTarget?: boolean;
    withImage?: boolean;
    backend?: "seaweedfs" | "external";
    schedule?: string;
}

async function buildBackup(options: Options = {}) {
    /** Every value a RandomToken was given, by resource name. */
    const generated = new Map<string, string>();
    const recorded = await useMocks("family", { values: {}, secretKeys: new Set<string>() }, (r) => {
        if (r.type === randomToken) {
            const value = randomBytes(Number(r.inputs.bytes)).toString("hex");
            generated.set(r.name, value);
            return { value };
        }
        return { stdout: "" };
    });
    const settings = settingsSchema.parse({
        nodes: bareMetalNodes(options.nodes ?? 3),
        storage:
            options.backend === "external"
                ? { backend: "external", endpoint: "https://s3.provider.example:8443", region: "eu-central-1" }
                : { backend: "seaweedfs", size: "100Gi" },
        members: ["ana"],
        apps: { images: options.withImage === false ? {} : { vaultBackup: image } },
        backup: {
            ...(options.withTarget ? { target } : {}),
            ...(options.schedule ? { vault: { schedule: options.schedule } } : {}),
        },
    });
    const config: PlatformConfig = {
        project: "peoples-cloud",
        stack: "family",
        settings,
        secrets: {
            sshPrivateKey: pulumi.secret("test-only-key"),
            ...(options.backend === "external"
                ? {
                      s3Credentials: {
                          accessKeyId: pulumi.secret("EXTERNALTESTKEYID0001"),
                          secretAccessKey: pulumi.secret("external-test-secret-0123456789abcdef"),
                      },
                  }
                : {}),
            ...(options.withTarget
                ? {
                      backupCredentials: {
                          accessKeyId: pulumi.secret(targetCredentials.accessKeyId),
                          secretAccessKey: pulumi.secret(targetCredentials.secretAccessKey),
                      },
                  }
                : {}),
        },
    };
    let said = "";
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (text: string) => ((said += text), true);
    try {
        const { backup: compose, after, protectedNames } = composeLayers(config);
        const backup = compose();
        await settled();
        const mine = recorded.filter((r) => r.name.startsWith("backup-vault"));
        const byName = (name: string) => {
            const found = recorded.find((r) => r.name === name);
            assert.ok(found, `no resource ${name}: ${mine.map((r) => r.name).join(", ")}`);
            return found;
        };
        return { backup, recorded, mine, byName, after, generated, protectedNames, said: () => said };
    } finally {
        process.stderr.write = write;
    }
}

const objectsOf = (r: RecordedResource) => yaml.loadAll(r.inputs.stdin as string) as KubeObject[];
const ofKind = (r: RecordedResource, kind: string) => objectsOf(r).filter((o) => o.kind === kind);
interface CronJobSpec {
    schedule: string;
    timeZone: string;
    concurrencyPolicy: string;
    startingDeadlineSeconds: number;
    successfulJobsHistoryLimit: number;
    failedJobsHistoryLimit: number;
    jobTemplate: {
        spec: {
            backoffLimit: number;
            activeDeadlineSeconds: number;
            ttlSecondsAfterFinished?: number;
            template: { spec: PodSpec };
        };
    };
}
const cronJobOf = (r: RecordedResource) => ofKind(r, "CronJob")[0] as KubeObject<"CronJob", CronJobSpec>;
const envOf = (c: PodSpec["containers"][number]) => Object.fromEntries(c.env.map((e) => [e.name, e.value]));

describe("backups: Vault's snapshots", () => {
    it("gives the job a snapshot-only policy and a role for backup/vault-backup, after Vault's configuration", async () => {
        const { byName, after } = await buildBackup();
        const policy = byName("backup-vault-policy");
        assert.deepEqual(
            [policy.inputs.path, policy.inputs.deletePath, policy.inputs.data],
            [
                "sys/policies/acl/vault-backup",
                "sys/policies/acl/vault-backup",
                {
                    policy: [
                        'path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}',
                        'path "secret/data/apps/vault-backup/*" {\n  capabilities = ["read"]\n}',
                        'path "secret/metadata/apps/vault-backup/*" {\n  capabilities = ["read", "list"]\n}',
                    ].join("\n\n"),
                },
            ],
        );
        const role = byName("backup-vault-role");
        assert.equal(role.inputs.path, "auth/kubernetes/role/vault-backup");
        assert.deepEqual(role.inputs.data, {
            bound_service_account_names: ["vault-backup"],
            bound_service_account_namespaces: ["backup"],
            token_policies: ["vault-backup"],
            token_ttl: "1h",
            audience: "vault",
        });
        for (const write of [
            "backup-vault-policy",
            "backup-vault-role",
            "backup-vault-kv-key",
            "backup-vault-kv-target",
        ]) {
            assert.ok(after(write).has("vault-config"), `${write} before Vault's configuration`);
            // Written with the admin token (secret), as every setting after the configuration.
            assert.ok(isWireSecret(byName(write).inputs.token), `${write}: its token is not secret`);
        }
        assert.ok(after("backup-vault-role").has("backup-vault-policy"));
    });

    it("makes the key once (protected) and keeps it, and every credential, out of all but the Vault writes that store them", async () => {
        const { recorded, byName, generated, protectedNames, backup } = await buildBackup({ withTarget: true });
        const hex = generated.get("backup-vault-key");
        assert.ok(hex && hex.length === 64, "no 32-byte key");
        assert.equal(byName("backup-vault-key").inputs.bytes, 32);
        assert.ok(protectedNames.includes("backup-vault-key"), "the key is not protected");
        const base64 = Buffer.from(hex, "hex").toString("base64");
        const { value, secret } = await unwrap(backup.backupKey);
        assert.deepEqual([value, secret], [base64, true]);

        const keyWrite = byName("backup-vault-kv-key");
        const targetWrite = byName("backup-vault-kv-target");
        assert.equal(keyWrite.inputs.path, "secret/data/apps/vault-backup/key");
        assert.equal(targetWrite.inputs.path, "secret/data/apps/vault-backup/target");
        for (const w of [keyWrite, targetWrite]) assert.ok(isWireSecret(w.inputs.data), `${w.name}: data not secret`);
        const data = (w: RecordedResource) => (w.inputs.data as { value: { data: Record<string, string> } }).value.data;
        assert.deepEqual(data(keyWrite), { "backup.key": base64 });
        assert.deepEqual(JSON.parse(data(targetWrite)["credentials.json"]), targetCredentials);

        // Every form of the key and the target's secret, anywhere else: only the etcd steps carry the target's
        // credentials (in their secret stdin), and nothing else carries the key.
        const forms = [hex, base64, targetCredentials.secretAccessKey];
        for (const r of recorded) {
            if (r === keyWrite || r === targetWrite || r.name.startsWith("backup-etcd-")) continue;
            const text = JSON.stringify(r.inputs);
            for (const f of forms) assert.ok(!text.includes(f), `${r.type} ${r.name} holds a secret`);
        }
        for (const r of recorded.filter((r) => r.name.startsWith("backup-etcd-"))) {
            assert.ok(isWireSecret(r.inputs.stdin), `${r.name}: its stdin is not secret`);
        }
    });

    it("without a target, sends Vault's snapshots to SeaweedFS with its admin credentials, never in a manifest, and warns once", async () => {
        const { recorded, byName, generated, said, backup } = await buildBackup();
        const credentials = JSON.parse(
            (byName("backup-vault-kv-target").inputs.data as { value: { data: Record<string, string> } }).value.data[
                "credentials.json"
            ],
        ) as { accessKeyId: string; secretAccessKey: string };
        assert.deepEqual(credentials, {
            accessKeyId: generated.get("apps-seaweedfs-access-key-id")!.toUpperCase(),
            secretAccessKey: generated.get("apps-seaweedfs-secret-key"),
        });
        // No generated value in any manifest the cluster receives.
        const manifests = recorded.filter(
            (r) => r.type === remoteScript && (r.inputs.env as Record<string, string>).K3S_MANIFEST,
        );
        assert.ok(manifests.some((m) => m.name === "backup-vault-backup-job"));
        for (const m of manifests) {
            for (const [name, value] of generated) {
                for (const form of [value, value.toUpperCase(), Buffer.from(value, "hex").toString("base64")]) {
                    assert.ok(!JSON.stringify(m.inputs.stdin).includes(form), `${m.name} holds ${name}`);
                }
            }
        }
        const warnings = said().match(/backup\.target is not set/g) ?? [];
        assert.equal(warnings.length, 1, said());
        assert.match(
            said(),
            /etcd snapshots stay on the K3s servers' own disks, and Vault's snapshots go to the platform's own storage \(SeaweedFS in the cluster, bucket peoples-cloud-backups\)\. That protects against mistakes, not against losing the cluster/,
        );
        assert.deepEqual(backup.vaultSnapshots, {
            endpoint: "http://seaweedfs-s3.storage.svc:8333",
            bucket: "peoples-cloud-backups",
            region: "us-east-1",
            prefix: "family/vault/",
            inCluster: true,
        });
        // The job makes the bucket first, on SeaweedFS, with the same credentials file.
        const pod = cronJobOf(byName("backup-vault-backup-job")).spec.jobTemplate.spec.template.spec;
        assert.deepEqual(
            pod.initContainers?.map((c) => [c.name, c.image, envOf(c)]),
            [
                [
                    "create-bucket",
                    image,
                    {
                        STORAGE_S3_ENDPOINT: "http://seaweedfs-s3.storage.svc:8333",
                        S3_REGION: "us-east-1",
                        BUCKET: "peoples-cloud-backups",
                        S3_CREDENTIALS_FILE: "/run/secrets/peoples-cloud/target/credentials.json",
                    },
                ],
            ],
        );
    });

    it("with an external storage backend and no target, sends them to the provider with its credentials", async () => {
        const { byName, backup } = await buildBackup({ backend: "external" });
        assert.deepEqual(backup.vaultSnapshots, {
            endpoint: "https://s3.provider.example:8443",
            bucket: "peoples-cloud-backups",
            region: "eu-central-1",
            prefix: "family/vault/",
            inCluster: false,
        });
        const data = (byName("backup-vault-kv-target").inputs.data as { value: { data: Record<string, string> } }).value
            .data;
        assert.deepEqual(JSON.parse(data["credentials.json"]), {
            accessKeyId: "EXTERNALTESTKEYID0001",
            secretAccessKey: "external-test-secret-0123456789abcdef",
        });
        const egress = (
            ofKind(byName("backup-vault-backup-network"), "NetworkPolicy").find(
                (p) => p.metadata.name === "vault-backup",
            )!.spec as { egress: { ports: unknown[] }[] }
        ).egress;
        assert.deepEqual(egress[2].ports, [{ protocol: "TCP", port: 8443 }]);
        // A target's endpoint without a port is on its scheme's.
        assert.deepEqual(
            ["https://s3.example", "http://s3.example", "http://s3.example:9000"].map((endpoint) =>
                storagePeer({ inCluster: false, endpoint }),
            ),
            [443, 80, 9000].map((port) => ({ inCluster: false, port })),
        );
    });

    it("runs the CronJob as its service account, one at a time, a failed Job kept, the files it reads from synced Secrets", async () => {
        const { byName, after } = await buildBackup({ withTarget: true });
        const job = cronJobOf(byName("backup-vault-backup-job"));
        assert.deepEqual([job.metadata.name, job.metadata.namespace], ["vault-backup", "backup"]);
        const { jobTemplate, ...schedule } = job.spec;
        assert.deepEqual(schedule, {
            schedule: "30 */6 * * *",
            timeZone: "Etc/UTC",
            concurrencyPolicy: "Forbid",
            startingDeadlineSeconds: 3600,
            successfulJobsHistoryLimit: 3,
            failedJobsHistoryLimit: 3,
        });
        assert.equal(jobTemplate.spec.backoffLimit, 2);
        assert.equal(jobTemplate.spec.activeDeadlineSeconds, 1800);
        // No TTL: a failed Job stays for its logs and for kube-state-metrics.
        assert.equal(jobTemplate.spec.ttlSecondsAfterFinished, undefined);
        const pod = jobTemplate.spec.template.spec;
        assert.deepEqual(
            [pod.serviceAccountName, pod.automountServiceAccountToken, pod.restartPolicy, pod.initContainers],
            ["vault-backup", false, "Never", undefined],
        );
        assert.deepEqual(pod.securityContext, {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            fsGroup: 65532,
            seccompProfile: { type: "RuntimeDefault" },
        });
        const [c] = pod.containers;
        assert.equal(c.image, image);
        assert.deepEqual(c.securityContext, {
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
        });
        assert.ok(c.resources.requests.memory && c.resources.limits.memory && c.resources.limits.cpu);
        assert.deepEqual(envOf(c), {
            // Three servers: the active one's service.
            VAULT_ADDR: "https://vault-active.vault.svc:8200",
            VAULT_AUTH_MOUNT: "kubernetes",
            VAULT_AUTH_ROLE: "vault-backup",
            VAULT_JWT_FILE: "/run/secrets/vault/token",
            NODE_EXTRA_CA_CERTS: "/run/secrets/vault/ca.crt",
            BACKUP_ENDPOINT: "https://backup.example.org:9000",
            BACKUP_REGION: "eu-central-1",
            BACKUP_BUCKET: "smith-backups",
            BACKUP_PREFIX: "family/vault/",
            BACKUP_CREDENTIALS_FILE: "/run/secrets/peoples-cloud/target/credentials.json",
            BACKUP_KEY_FILE: "/run/secrets/peoples-cloud/key/backup.key",
            BACKUP_KEEP: "14",
        });
        assert.deepEqual(c.volumeMounts, [
            { name: "key", mountPath: "/run/secrets/peoples-cloud/key", readOnly: true },
            { name: "target", mountPath: "/run/secrets/peoples-cloud/target", readOnly: true },
            { name: "vault", mountPath: "/run/secrets/vault", readOnly: true },
            { name: "tmp", mountPath: "/tmp", readOnly: false },
        ]);
        assert.deepEqual(pod.volumes, [
            { name: "key", secret: { secretName: "vault-backup-key", defaultMode: 0o440 } },
            { name: "target", secret: { secretName: "vault-backup-target", defaultMode: 0o440 } },
            {
                name: "vault",
                projected: {
                    sources: [
                        { serviceAccountToken: { audience: "vault", expirationSeconds: 3600, path: "token" } },
                        { secret: { name: "vault-ca", items: [{ key: "ca.crt", path: "ca.crt" }] } },
                    ],
                },
            },
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
        ]);

        // The operator logs in as the job's role and syncs its two KV secrets into `backup`.
        const sync = objectsOf(byName("backup-vault-backup-secrets"));
        assert.deepEqual(
            sync.map((o) => [o.kind, o.metadata.namespace, o.metadata.name]),
            [
                ["VaultAuth", "backup", "vault-backup"],
                ["VaultStaticSecret", "backup", "vault-backup-key"],
                ["VaultStaticSecret", "backup", "vault-backup-target"],
            ],
        );
        assert.deepEqual(
            sync.slice(1).map((o) => (o.spec as { path: string }).path),
            ["apps/vault-backup/key", "apps/vault-backup/target"],
        );
        const namespace = objectsOf(byName("backup-vault-backup-namespace"));
        assert.deepEqual(
            namespace.map((o) => [o.kind, o.metadata.name]),
            [
                ["Namespace", "backup"],
                ["ServiceAccount", "vault-backup"],
                ["Certificate", "vault-ca"],
            ],
        );
        assert.equal(
            (namespace[2].spec as { issuerRef: { name: string } }).issuerRef.name,
            "peoples-cloud-internal-ca",
        );

        // The order: Vault's identity and the KV secrets, the sync, its Secrets present, then the CronJob.
        const secrets = after("backup-vault-backup-secrets");
        for (const dep of [
            "backup-vault-role",
            "backup-vault-kv-key",
            "backup-vault-kv-target",
            "backup-vault-backup-namespace",
            // The whole apps layer (a component stands for its children): the operator's CRDs, SeaweedFS.
            "apps",
        ]) {
            assert.ok(secrets.has(dep), `the sync does not wait for ${dep}`);
        }
        const jobAfter = after("backup-vault-backup-job");
        for (const dep of ["backup-vault-backup-secrets-ready", "backup-vault-backup-network"]) {
            assert.ok(jobAfter.has(dep), `the CronJob does not wait for ${dep}`);
        }
        assert.ok(after("backup-vault-backup-namespace").has("crds-internal-ca-ready"));
    });

    it("on one node asks the one Vault server; a schedule and keep of the stack's", async () => {
        const { byName } = await buildBackup({ nodes: 1, schedule: "15 2 * * *" });
        const job = cronJobOf(byName("backup-vault-backup-job"));
        assert.equal(job.spec.schedule, "15 2 * * *");
        assert.equal(
            envOf(job.spec.jobTemplate.spec.template.spec.containers[0]).VAULT_ADDR,
            "https://vault.vault.svc:8200",
        );
        // Daily: missing after two days.
        const rule = ofKind(byName("backup-vault-backup-job"), "PrometheusRule")[0];
        assert.match(JSON.stringify(rule.spec), /> 172800/);
    });

    it("lets the job reach only DNS, Vault and the target, and SeaweedFS let it in on its S3 port", async () => {
        const inCluster = await buildBackup();
        const policies = ofKind(inCluster.byName("backup-vault-backup-network"), "NetworkPolicy");
        assert.deepEqual(
            policies.map((p) => [p.metadata.namespace, p.metadata.name]),
            [
                ["backup", "deny-ingress"],
                ["backup", "vault-backup"],
                ["storage", "seaweedfs-from-vault-backup"],
            ],
        );
        const ns = (n: string) => ({ matchLabels: { "kubernetes.io/metadata.name": n } });
        const pods = (app: string) => ({ matchLabels: { "app.kubernetes.io/name": app } });
        assert.deepEqual(policies[1].spec, {
            podSelector: pods("vault-backup"),
            policyTypes: ["Ingress", "Egress"],
            ingress: [],
            egress: [
                {
                    to: [
                        {
                            namespaceSelector: ns("kube-system"),
                            podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
                        },
                    ],
                    ports: [
                        { protocol: "UDP", port: 53 },
                        { protocol: "TCP", port: 53 },
                    ],
                },
                {
                    to: [{ namespaceSelector: ns("vault"), podSelector: pods("vault") }],
                    ports: [{ protocol: "TCP", port: 8200 }],
                },
                {
                    to: [{ namespaceSelector: ns("storage"), podSelector: pods("seaweedfs") }],
                    ports: [{ protocol: "TCP", port: 8333 }],
                },
            ],
        });
        assert.deepEqual(policies[2].spec, {
            podSelector: pods("seaweedfs"),
            policyTypes: ["Ingress"],
            ingress: [
                {
                    from: [{ namespaceSelector: ns("backup"), podSelector: pods("vault-backup") }],
                    ports: [{ protocol: "TCP", port: 8333 }],
                },
            ],
        });

        const outside = await buildBackup({ withTarget: true });
        const external = ofKind(outside.byName("backup-vault-backup-network"), "NetworkPolicy");
        assert.deepEqual(
            external.map((p) => p.metadata.name),
            ["deny-ingress", "vault-backup"],
        );
        assert.deepEqual((external[1].spec as { egress: unknown[] }).egress[2], {
            to: [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
            ports: [{ protocol: "TCP", port: 9000 }],
        });
    });

    it("alerts when the last backup failed and when none succeeded for twice the schedule's interval", async () => {
        const { byName } = await buildBackup();
        const [rule] = ofKind(byName("backup-vault-backup-job"), "PrometheusRule");
        assert.deepEqual(
            [rule.apiVersion, rule.metadata.namespace, rule.metadata.name],
            ["monitoring.coreos.com/v1", "backup", "vault-backup"],
        );
        const { groups } = rule.spec as { groups: { name: string; rules: { alert: string; expr: string }[] }[] };
        assert.deepEqual(groups[0].rules, vaultBackupAlertRules("30 */6 * * *"));
        const [failed, missing] = groups[0].rules;
        assert.equal(failed.alert, "VaultBackupFailed");
        assert.match(
            failed.expr,
            /kube_job_status_failed\{namespace="backup", job_name=~"vault-backup-\[0-9\]\+"\} > 0/,
        );
        assert.match(
            failed.expr,
            /kube_cronjob_status_last_successful_time\{namespace="backup", cronjob="vault-backup"\}/,
        );
        assert.equal(missing.alert, "VaultBackupMissing");
        // Every 6 hours: missing after 12.
        assert.match(
            missing.expr,
            /time\(\) - max by \(namespace\) \(kube_cronjob_status_last_successful_time\{[^}]*\}\) > 43200/,
        );
        assert.match(missing.expr, /kube_cronjob_created\{namespace="backup", cronjob="vault-backup"\}\) > 43200/);
    });

    it("without an image, writes the identity, the key and the secrets but no CronJob, and says so", async () => {
        const { mine, said, backup } = await buildBackup({ withImage: false });
        assert.ok(!mine.some((r) => r.name === "backup-vault-backup-job"), mine.map((r) => r.name).join(", "));
        assert.equal(mine.filter((r) => r.type === vaultWrite).length, 4);
        assert.ok(mine.some((r) => r.name === "backup-vault-backup-secrets-ready"));
        assert.match(
            said(),
            /vault-backup has no published image yet: Vault is not backed up until peoples-cloud:apps\.images\.vaultBackup is set/,
        );
        assert.equal((await unwrap(backup.backupKey)).secret, true);
    });

    it("passes every rule of the policy pack, prod's settings", async () => {
        const { mine } = await buildBackup({ withTarget: true });
        const file = policyConfig("prod");
        const found: string[] = [];
        for (const policy of policies) {
            if ("validateStack" in policy) continue;
            const { config } = ruleSettings(file, policy);
            for (const r of mine) {
                found.push(...resourceViolations(policy, { type: r.type, name: r.name, props: r.inputs }, config));
            }
        }
        assert.deepEqual(found, []);
    });
});
