// The vault-backup alerts run by the real promtool (`promtool test rules`, built by scripts/tools.sh host) on
// kube-state-metrics' series as a failing, retrying, succeeding or stopped CronJob produces them: a failed Job
// after the last success fires VaultBackupFailed, a retry still running or a later success is silent; no success
// for twice the schedule's interval (or none since the CronJob was made) fires VaultBackupMissing.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { toolsBinDir } from "@peoples-cloud/testkit";
import { vaultBackupAlertRules, vaultBackupPrometheusRule } from "../../components/backup/vault-manifests";

const ns = 'namespace="backup"';
const job = (n: number) => `{${ns}, job_name="vault-backup-${n}"}`;
const cronjob = `{${ns}, cronjob="vault-backup"}`;

const SCHEDULE = "30 */6 * * *";
const rules = vaultBackupAlertRules(SCHEDULE);

/** promtool's alert expectation: fires once for the namespace (with the rule's annotations), or stays silent. */
const expect = (alert: string, at: string, fires: boolean) => ({
    eval_time: at,
    alertname: alert,
    exp_alerts: fires
        ? [
              {
                  exp_labels: { namespace: "backup", severity: "critical" },
                  exp_annotations: rules.find((r) => r.alert === alert)!.annotations,
              },
          ]
        : [],
});

/** Series every scenario has: the CronJob, made at time 0. */
const cronJobSeries = (samples: number) => [
    { series: `kube_cronjob_info${cronjob.slice(0, -1)}, schedule="${SCHEDULE}"}`, values: `1x${samples}` },
    { series: `kube_cronjob_created${cronjob}`, values: `0x${samples}` },
];

const scenarios = [
    {
        name: "a Job that failed after the last success fires; its retry while running does not",
        interval: "1m",
        input_series: [
            ...cronJobSeries(60),
            // The last success at 5 minutes, by job 1 (which had one failed pod before it succeeded).
            { series: `kube_cronjob_status_last_successful_time${cronjob}`, values: "300x60" },
            { series: `kube_job_status_start_time${job(1)}`, values: "0x60" },
            { series: `kube_job_status_failed${job(1)}`, values: "1x60" },
            { series: `kube_job_status_active${job(1)}`, values: "0x60" },
            // Job 2 starts at 30 minutes; a pod fails at once and it retries until 40, then the Job fails.
            { series: `kube_job_status_start_time${job(2)}`, values: "_x30 1800x30" },
            { series: `kube_job_status_failed${job(2)}`, values: "_x30 1x10 3x20" },
            { series: `kube_job_status_active${job(2)}`, values: "_x30 1x10 0x20" },
        ],
        alert_rule_test: [
            expect("VaultBackupFailed", "20m", false),
            expect("VaultBackupFailed", "35m", false),
            expect("VaultBackupFailed", "45m", true),
            expect("VaultBackupMissing", "45m", false),
        ],
    },
    {
        name: "a success after the failed Job silences it",
        interval: "1m",
        input_series: [
            ...cronJobSeries(60),
            { series: `kube_cronjob_status_last_successful_time${cronjob}`, values: "300x30 2100x30" },
            { series: `kube_job_status_start_time${job(2)}`, values: "1200x60" },
            { series: `kube_job_status_failed${job(2)}`, values: "3x60" },
            { series: `kube_job_status_active${job(2)}`, values: "0x60" },
            { series: `kube_job_status_start_time${job(3)}`, values: "_x33 1980x26" },
            { series: `kube_job_status_failed${job(3)}`, values: "_x33 0x26" },
            { series: `kube_job_status_active${job(3)}`, values: "_x33 1x2 0x24" },
        ],
        alert_rule_test: [expect("VaultBackupFailed", "25m", true), expect("VaultBackupFailed", "45m", false)],
    },
    {
        name: "the first Job failing, before any success, fires",
        interval: "1m",
        input_series: [
            ...cronJobSeries(30),
            { series: `kube_job_status_start_time${job(1)}`, values: "_x10 600x20" },
            { series: `kube_job_status_failed${job(1)}`, values: "_x10 1x5 3x15" },
            { series: `kube_job_status_active${job(1)}`, values: "_x10 1x5 0x15" },
        ],
        alert_rule_test: [expect("VaultBackupFailed", "12m", false), expect("VaultBackupFailed", "25m", true)],
    },
    {
        name: "no success for twice the schedule's interval (6 h) fires; within it, silent",
        interval: "10m",
        input_series: [
            ...cronJobSeries(90),
            { series: `kube_cronjob_status_last_successful_time${cronjob}`, values: "60x90" },
        ],
        alert_rule_test: [
            expect("VaultBackupMissing", "11h", false),
            expect("VaultBackupMissing", "12h10m", true),
            expect("VaultBackupFailed", "12h10m", false),
        ],
    },
    {
        name: "no success ever, twice the interval after the CronJob was made, fires",
        interval: "10m",
        input_series: cronJobSeries(90),
        alert_rule_test: [expect("VaultBackupMissing", "11h", false), expect("VaultBackupMissing", "13h", true)],
    },
];

describe("backups: the vault-backup alerts in the real promtool", function () {
    this.timeout(60_000);
    let dir: string;
    let promtool: string;

    before(() => {
        promtool = path.join(toolsBinDir("host"), "promtool");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-alerts-"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    const run = (...args: string[]) => spawnSync(promtool, args, { cwd: dir, encoding: "utf8" });

    it("checks the rules and passes every scenario", () => {
        const rule = vaultBackupPrometheusRule(SCHEDULE);
        fs.writeFileSync(path.join(dir, "rules.yaml"), yaml.dump(rule.spec, { lineWidth: -1, noRefs: true }));
        const check = run("check", "rules", "rules.yaml");
        assert.equal(check.status, 0, check.stdout + check.stderr);
        assert.match(check.stdout, /SUCCESS: 2 rules found/);
        fs.writeFileSync(
            path.join(dir, "tests.yaml"),
            yaml.dump({ rule_files: ["rules.yaml"], evaluation_interval: "1m", tests: scenarios }, { lineWidth: -1 }),
        );
        const tested = run("test", "rules", "tests.yaml");
        assert.equal(tested.status, 0, tested.stdout + tested.stderr);
        assert.match(tested.stdout, /SUCCESS/);
    });
});
