// The backup layer's etcd snapshots: the settings each K3s server gets (with and without an S3 target), the
// credentials only in secret inputs, one server at a time; and its scripts run by bash against a stand-in k3s
// and systemctl — the drop-in 0600 and applied with a restart only on change, a restore's steps per server, and
// each failure naming its step.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { programResources } from "../helpers/program";
import { bareMetalNodes } from "../helpers/stackConfig";
import { validateConfig } from "../../stacks/config";
import { rawConfig } from "../helpers/stackConfig";

const ns = "peoples-cloud";
const target = { endpoint: "https://backup.example.org:9000", bucket: "smith-backups", region: "eu-central-1" };
const credentials = {
    "peoples-cloud:backupAccessKeyId": "backup-test-key-id",
    "peoples-cloud:backupSecretAccessKey": "backup-test-secret-0123456789",
};
/** The engine's wire form of a secret value. */
const secretSig = "4dabf18193072939515e22adb298388d";
const isWireSecret = (v: unknown) => typeof v === "object" && v !== null && secretSig in v;

describe("backups: etcd snapshots", () => {
    it("needs the target's credentials as secrets, and a well-formed target and schedule", () => {
        const plain = { [`${ns}:nodes`]: bareMetalNodes(1), [`${ns}:backup`]: { target } };
        const ssh = { [`${ns}:sshPrivateKey`]: "k" };
        const missing = validateConfig(rawConfig(plain, ssh));
        assert.deepEqual(missing.ok ? [] : missing.problems.map((p) => p.split(":").slice(0, 2).join(":")), [
            "peoples-cloud:backupAccessKeyId",
            "peoples-cloud:backupSecretAccessKey",
        ]);
        assert.equal(validateConfig(rawConfig(plain, { ...ssh, ...credentials })).ok, true);
        const bad = validateConfig(
            rawConfig(
                {
                    ...plain,
                    [`${ns}:backup`]: {
                        target: { ...target, endpoint: "http://backup.example.org" },
                        etcd: { schedule: "hourly" },
                    },
                },
                { ...ssh, ...credentials },
            ),
        );
        assert.deepEqual(bad.ok ? [] : bad.problems.map((p) => p.split(",")[0]), [
            "peoples-cloud:backup.target.endpoint: expected an https:// URL",
            "peoples-cloud:backup.etcd.schedule: expected a cron schedule such as '0 */6 * * *'",
        ]);
    });

    it("sets every K3s server (not the agents); with a target, path-style S3 and the credentials secret", async () => {
        const recorded = await programResources(
            "dev",
            {
                [`${ns}:nodes`]: bareMetalNodes(5),
                [`${ns}:backup`]: { target, etcd: { retention: 10 } },
            },
            credentials,
        );
        const steps = recorded.filter((r) => r.name.startsWith("backup-etcd-"));
        assert.deepEqual(
            steps.map((r) => r.name),
            ["backup-etcd-node-1", "backup-etcd-node-2", "backup-etcd-node-3"],
        );
        for (const step of steps) {
            assert.equal(step.inputs.step, "configure etcd snapshots");
            assert.ok(isWireSecret(step.inputs.stdin), `${step.name}: its stdin is not secret`);
            const settings = (step.inputs.stdin as Record<string, string>).value;
            assert.equal(
                settings,
                [
                    'etcd-snapshot-schedule-cron: "0 */6 * * *"',
                    "etcd-snapshot-retention: 10",
                    "etcd-snapshot-compress: true",
                    "etcd-s3: true",
                    'etcd-s3-endpoint: "backup.example.org:9000"',
                    'etcd-s3-bucket: "smith-backups"',
                    'etcd-s3-region: "eu-central-1"',
                    'etcd-s3-folder: "dev/etcd"',
                    'etcd-s3-bucket-lookup-type: "path"',
                    'etcd-s3-access-key: "backup-test-key-id"',
                    'etcd-s3-secret-key: "backup-test-secret-0123456789"',
                    "",
                ].join("\n"),
            );
        }
        // Elsewhere only in the secret Vault write that stores it for Vault's snapshots (backup-vault.test.ts).
        const stored = recorded.find((r) => r.name === "backup-vault-kv-target");
        assert.ok(stored && isWireSecret(stored.inputs.data));
        for (const r of recorded.filter((r) => !r.name.startsWith("backup-etcd-") && r !== stored)) {
            const text = JSON.stringify(r.inputs);
            assert.ok(!text.includes(credentials["peoples-cloud:backupSecretAccessKey"]), `${r.name} holds the secret`);
        }
    });

    it("without a target keeps the snapshots on the servers and says so", async () => {
        let said = "";
        const write = process.stderr.write.bind(process.stderr);
        process.stderr.write = (text: string) => ((said += text), true);
        const recorded = await programResources("dev").finally(() => (process.stderr.write = write));
        assert.match(said, /backup\.target is not set: etcd snapshots stay on the K3s servers' own disks, and Vault's/);
        const [step] = recorded.filter((r) => r.name.startsWith("backup-etcd-"));
        const stdin = step.inputs.stdin as string;
        assert.equal(
            stdin,
            'etcd-snapshot-schedule-cron: "0 */6 * * *"\netcd-snapshot-retention: 28\netcd-snapshot-compress: true\n',
        );
    });
});

describe("backups: the etcd scripts on a stand-in K3s", () => {
    const scripts = path.join(__dirname, "..", "..", "components", "backup", "scripts");
    let dir: string;
    let calls: string;
    let env: Record<string, string>;

    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-backup-scripts-"));
        calls = path.join(dir, "calls");
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin);
        // Each stand-in records its call; STANDIN_FAIL names a call that fails.
        const standIn = (name: string) =>
            fs.writeFileSync(
                path.join(bin, name),
                `#!/usr/bin/env bash\necho "${name} $*" >>"${calls}"\n[ "\${STANDIN_FAIL:-}" != "${name} $1" ] || exit 1\n`,
                { mode: 0o755 },
            );
        standIn("systemctl");
        standIn("k3s");
        env = {
            PATH: `${bin}:${process.env.PATH ?? ""}`,
            K3S_CONFIG_DIR: path.join(dir, "etc-rancher-k3s"),
            K3S_DATA_DIR: path.join(dir, "var-lib-rancher-k3s"),
            K3S_WAIT_SECONDS: "5",
        };
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    const run = (script: string, extra: Record<string, string> = {}, stdin = "", step = "a step") =>
        spawnSync("bash", ["-c", fs.readFileSync(path.join(scripts, script), "utf8"), step], {
            env: { ...env, ...extra },
            input: stdin,
            encoding: "utf8",
        });
    const called = () => (fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : []);

    it("etcd-snapshots.sh writes the drop-in 0600, restarts K3s only on a change, and removes it on delete", () => {
        const settings = 'etcd-snapshot-retention: 5\netcd-s3-secret-key: "s3cr3t"\n';
        assert.equal(run("etcd-snapshots.sh", {}, settings).status, 0);
        const dropIn = path.join(dir, "etc-rancher-k3s", "config.yaml.d", "50-etcd-snapshots.yaml");
        assert.equal(fs.readFileSync(dropIn, "utf8"), settings);
        assert.equal((fs.statSync(dropIn).mode & 0o777).toString(8), "600");
        assert.deepEqual(called(), ["systemctl restart k3s", "k3s kubectl get --raw=/readyz"]);

        const again = run("etcd-snapshots.sh", {}, settings);
        assert.match(again.stdout, /settings unchanged/);
        assert.equal(called().length, 2, "K3s restarted for unchanged settings");
        assert.deepEqual(fs.readdirSync(path.dirname(dropIn)), ["50-etcd-snapshots.yaml"], "a temporary file is left");

        assert.equal(run("etcd-snapshots.sh", {}, settings, "configure etcd snapshots (delete)").status, 0);
        assert.ok(!fs.existsSync(dropIn));
        assert.equal(called().at(-2), "systemctl restart k3s");
    });

    it("etcd-snapshots.sh names the step that failed", () => {
        const failed = run("etcd-snapshots.sh", { STANDIN_FAIL: "systemctl restart" }, "x: 1\n");
        assert.equal(failed.status, 1);
        assert.match(failed.stderr, /etcd-snapshots: restarting K3s failed/);
        const never = run("etcd-snapshots.sh", { STANDIN_FAIL: "k3s kubectl", K3S_WAIT_SECONDS: "1" }, "x: 2\n");
        assert.equal(never.status, 1);
        assert.match(never.stderr, /K3s did not serve again after the restart/);
    });

    it("k3s-restore.sh resets the first server to the snapshot and rejoins the others, keeping their old data", () => {
        const first = run("k3s-restore.sh", {
            K3S_RESTORE_ROLE: "first",
            K3S_SNAPSHOT: "etcd-snapshot-node-1-1765000000",
        });
        assert.equal(first.status, 0, first.stderr);
        assert.deepEqual(called(), [
            "systemctl stop k3s",
            "k3s server --cluster-reset --cluster-reset-restore-path=etcd-snapshot-node-1-1765000000",
            "systemctl start k3s",
            "k3s kubectl get --raw=/readyz",
        ]);
        fs.rmSync(calls);
        const db = path.join(dir, "var-lib-rancher-k3s", "server", "db");
        fs.mkdirSync(db, { recursive: true });
        fs.writeFileSync(path.join(db, "member"), "old");
        const other = run("k3s-restore.sh", { K3S_RESTORE_ROLE: "other" });
        assert.equal(other.status, 0, other.stderr);
        assert.deepEqual(called(), ["systemctl stop k3s", "systemctl start k3s", "k3s kubectl get --raw=/readyz"]);
        const server = fs.readdirSync(path.dirname(db));
        assert.equal(server.length, 1);
        assert.match(server[0], /^db\.before-restore-\d{8}T\d{6}$/);
    });

    it("k3s-restore.sh names the step that failed", () => {
        const reset = run("k3s-restore.sh", {
            K3S_RESTORE_ROLE: "first",
            K3S_SNAPSHOT: "s",
            STANDIN_FAIL: "k3s server",
        });
        assert.equal(reset.status, 1);
        assert.match(reset.stderr, /k3s-restore: the cluster reset from snapshot s failed/);
        assert.ok(!called().includes("systemctl start k3s"), "K3s started after a failed reset");
        const stop = run("k3s-restore.sh", { K3S_RESTORE_ROLE: "other", STANDIN_FAIL: "systemctl stop" });
        assert.match(stop.stderr, /k3s-restore: stopping K3s failed/);
    });
});
