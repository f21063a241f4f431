// The vault-backup CronJob's pod run as the cluster would run it, from the backup layer's own pieces: OpenBao with
// raft storage holding the job's policy and Kubernetes auth role (as the layer writes them) and its two KV secrets
// (in the layer's shapes); the Vault Secrets Operator's sync done as the job's role; the pod's init container
// (the bucket made on SeaweedFS) and the job itself started with the pod's environment, its mounted files under a
// temporary folder (processEnv). The backup lands under the stack's prefix and decrypts with the key; nothing
// secret is printed.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    baoApi,
    type KubernetesApi,
    type RaftServer,
    type S3Server,
    startKubernetesApi,
    startOpenBaoRaft,
    startSeaweedfs,
    initialiseOpenBao,
} from "@peoples-cloud/testkit";
import { fetchBackup, listBackups } from "@peoples-cloud/vault-backup";
import { processEnv } from "../../components/apps/pods";
import {
    BACKUP_NAMESPACE,
    BACKUP_SECRETS,
    backupSecretFiles,
    VAULT_BACKUP,
    VAULT_BACKUP_IDENTITY,
    vaultBackupPod,
    vaultBackupPolicy,
} from "../../components/backup/vault-manifests";
import { kubernetesAuthRole } from "../../components/vault/config";

const jobMain = path.join(path.dirname(require.resolve("@peoples-cloud/vault-backup/package.json")), "src", "main.ts");

/** Runs one container's program with the pod's environment; the image's working folder holds its modules. */
function runContainer(command: string[], env: Record<string, string>) {
    const child = spawn(process.execPath, command, {
        cwd: path.resolve(__dirname, "..", ".."),
        env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...env },
        stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    return new Promise<{ code: number | null; output: string }>((resolve) =>
        child.once("exit", (code) => resolve({ code, output })),
    );
}

describe("the vault-backup CronJob's pod, run as the cluster runs it", function () {
    this.timeout(5 * 60_000);
    let bao: RaftServer;
    let s3: S3Server;
    let api: KubernetesApi;
    let work: string;
    const secrets: string[] = [];

    before(async () => {
        [bao, s3, api] = await Promise.all([startOpenBaoRaft(), startSeaweedfs(), startKubernetesApi()]);
        work = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-backup-job-"));
        const { rootToken, unsealKeys } = await initialiseOpenBao(bao, 1, 1);
        secrets.push(rootToken, ...unsealKeys, s3.secretAccessKey);
        // What the Vault layer configures, then what the backup layer writes with the admin token.
        await baoApi(bao, "POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
        await baoApi(bao, "POST", "sys/auth/kubernetes", { type: "kubernetes" });
        await baoApi(bao, "POST", "auth/kubernetes/config", {
            kubernetes_host: api.url,
            kubernetes_ca_cert: api.caCert,
            token_reviewer_jwt: api.reviewerToken,
            disable_local_ca_jwt: true,
        });
        await baoApi(bao, "PUT", `sys/policies/acl/${VAULT_BACKUP}`, { policy: vaultBackupPolicy() });
        await baoApi(bao, "POST", `auth/kubernetes/role/${VAULT_BACKUP}`, kubernetesAuthRole(VAULT_BACKUP_IDENTITY));
    });
    after(async () => {
        await Promise.all([bao?.stop(), s3?.stop(), api?.stop()]);
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("makes the bucket, snapshots Vault, and leaves a backup the key decrypts, printing no secret", async () => {
        const key = randomBytes(32);
        secrets.push(key.toString("base64"), key.toString("hex"));
        const kvFiles = {
            key: backupSecretFiles.key(key.toString("base64")),
            target: backupSecretFiles.target({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }),
        };
        // A new KV v2 mount upgrades itself for a moment before it takes writes.
        for (let i = 0; ; i++) {
            const ok = await baoApi(bao, "POST", `secret/data/apps/${VAULT_BACKUP}/key`, { data: kvFiles.key }).then(
                () => true,
                (err: Error) =>
                    /Upgrading from non-versioned/.test(err.message) && i < 50 ? false : Promise.reject(err),
            );
            if (ok) break;
            await new Promise((r) => setTimeout(r, 200));
        }
        await baoApi(bao, "POST", `secret/data/apps/${VAULT_BACKUP}/target`, { data: kvFiles.target });

        // The Vault Secrets Operator's sync: logged in as the job's role (its VaultAuth), it reads both secrets.
        const jwt = api.serviceAccountToken({
            namespace: BACKUP_NAMESPACE,
            serviceAccount: VAULT_BACKUP,
            audiences: ["vault"],
        });
        secrets.push(jwt);
        const login = (await fetch(`${bao.url}/v1/auth/kubernetes/login`, {
            method: "POST",
            body: JSON.stringify({ role: VAULT_BACKUP, jwt }),
        }).then((r) => r.json())) as { auth: { client_token: string } };
        const synced: Record<string, Record<string, string>> = {};
        for (const [secret, vaultPath] of [
            [BACKUP_SECRETS.key, "key"],
            [BACKUP_SECRETS.target, "target"],
        ]) {
            const res = await fetch(`${bao.url}/v1/secret/data/apps/${VAULT_BACKUP}/${vaultPath}`, {
                headers: { "X-Vault-Token": login.auth.client_token },
            });
            assert.equal(res.status, 200, `the job's role cannot read ${vaultPath}`);
            synced[secret] = ((await res.json()) as { data: { data: Record<string, string> } }).data.data;
        }

        const target = {
            endpoint: s3.url,
            region: "us-east-1",
            bucket: "peoples-cloud-backups",
            prefix: "family/vault/",
        };
        const pod = vaultBackupPod({
            image: "unused",
            schedule: "30 */6 * * *",
            keep: 3,
            vaultAddress: bao.url,
            target,
            createBucket: true,
        });
        // Each volume's files under work/<volume>, as the kubelet mounts them.
        const volumes: Record<string, Record<string, string>> = {
            key: synced[BACKUP_SECRETS.key],
            target: synced[BACKUP_SECRETS.target],
            vault: { token: jwt, "ca.crt": api.caCert },
        };
        for (const [volume, files] of Object.entries(volumes)) {
            fs.mkdirSync(path.join(work, volume), { recursive: true });
            for (const [file, content] of Object.entries(files))
                fs.writeFileSync(path.join(work, volume, file), content);
        }
        fs.mkdirSync(path.join(work, "tmp"));

        const [init] = pod.initContainers ?? [];
        // `node -e <script>` in the image: this test's Node.js runs the same script.
        const [node, ...args] = init.command!;
        assert.equal(node, "node");
        const made = await runContainer(args, processEnv(pod, init.name, work));
        assert.equal(made.code, 0, made.output);

        const job = await runContainer(["--require", "tsx/cjs", jobMain], processEnv(pod, VAULT_BACKUP, work));
        assert.equal(job.code, 0, job.output);
        const done = job.output
            .split("\n")
            .filter((l) => l.startsWith("{"))
            .map((l) => JSON.parse(l) as { message: string })
            .at(-1);
        assert.equal(done?.message, "backup done", job.output);

        const store = {
            ...target,
            credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        };
        const backups = await listBackups(store);
        assert.equal(backups.length, 1);
        assert.ok(backups[0].key.startsWith("family/vault/"), backups[0].key);
        const fetched = await fetchBackup(store, key);
        assert.ok(fetched.snapshot.length > 0);
        for (const s of secrets) {
            assert.ok(!made.output.includes(s) && !job.output.includes(s), "a secret appeared in the job's output");
        }
    });
});
