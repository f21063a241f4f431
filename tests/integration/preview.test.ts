// The real engine previews the real program of the dev and prod stacks, offline, from a fresh state.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { seaweedfs } from "../../components/apps/versions";
import { platform } from "../../program";
import { loadConfig } from "../../stacks/config";
import { policyAnalyzer } from "../../cli/workspace";
import { type Engine, PlanRecorder, projectStack, readTree, tempEngine } from "../helpers/engine";
import { useMocks } from "../helpers/mocks";
import { rawConfig, repoRoot, stackFileValues } from "../helpers/stackConfig";

const testSecrets: Record<string, Record<string, string>> = {
    dev: { "peoples-cloud:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\npreview-test-only\n" },
    prod: { "hcloud:token": "preview-test-only-hcloud-token" },
};

/**
 * The services' images for the dev preview, so the pack sees their workloads: references to digests of a label,
 * not of any published image (none is published yet, see components/apps/versions.ts); a preview pulls nothing.
 */
const testImage = (service: string) =>
    `ghcr.io/family/peoples-cloud-${service}@sha256:${createHash("sha256").update(`preview ${service}`).digest("hex")}`;
const testSettings: Record<string, Record<string, string>> = {
    dev: {
        "peoples-cloud:apps": JSON.stringify({
            images: {
                storageS3Api: testImage("storage-s3-api"),
                storageKvApi: testImage("storage-kv-api"),
                vaultBackup: testImage("vault-backup"),
            },
        }),
    },
    prod: {},
};

async function mockedTypes(stack: string): Promise<Record<string, number>> {
    const recorded = await useMocks(
        stack,
        rawConfig({ ...stackFileValues(stack), ...testSettings[stack] }, testSecrets[stack]),
    );
    platform();
    // Registrations that wait on other resources' outputs land later: wait until none arrives for a while.
    for (let seen = -1; seen !== recorded.length;) {
        seen = recorded.length;
        await new Promise((r) => setTimeout(r, 200));
    }
    const types: Record<string, number> = {};
    for (const r of recorded) types[r.type] = (types[r.type] ?? 0) + 1;
    return types;
}

/** Provider plugins the given resource types need that the test engine does not have. */
function missingPlugins(types: string[]): string[] {
    const builtIn = new Set(["pulumi", "pulumi-nodejs", "peoples-cloud"]);
    const needed = new Set(types.map((t) => t.split(":")[0]).filter((p) => !builtIn.has(p)));
    const plugins = path.join(engine.envVars.PULUMI_HOME, "plugins");
    const installed = fs.existsSync(plugins) ? fs.readdirSync(plugins) : [];
    return [...needed].filter((p) => !installed.some((dir) => dir.startsWith(`resource-${p}-`)));
}

let engine: Engine;

describe("real pulumi preview", function () {
    this.timeout(10 * 60_000);
    before(async () => {
        engine = await tempEngine();
    });
    after(() => engine?.cleanup());

    for (const stackName of ["dev", "prod"]) {
        it(`previews the ${stackName} stack under the policy pack and plans what the mocked run declares`, async function () {
            const expected = await mockedTypes(stackName);
            // Every layer built so far is in the plan: the cluster foundation rides on K3s, on in both stacks.
            assert.equal(expected["peoples-cloud:foundation:FoundationLayer"], 1, JSON.stringify(expected));
            assert.equal(expected["peoples-cloud:apps:AppsLayer"], 1, JSON.stringify(expected));
            assert.equal(expected["peoples-cloud:backup:VaultSnapshots"], 1, JSON.stringify(expected));
            const missing = missingPlugins(Object.keys(expected));
            if (missing.length > 0) {
                // Not faked: this machine cannot build these provider plugins (see the README's Tools).
                console.log(`      ${stackName}: no ${missing.join(", ")} provider plugin here; preview skipped`);
                this.skip();
            }
            const stack = await projectStack(engine, stackName, () => Promise.resolve(platform()), {
                configFrom: stackName,
                secrets: testSecrets[stackName],
                plain: testSettings[stackName],
            });
            const plan = new PlanRecorder();
            const result = await stack.preview({
                onEvent: plan.onEvent,
                policyPacks: [policyAnalyzer(path.join(repoRoot, "policy"))],
                policyPackConfigs: [path.join(repoRoot, "policy", "config", `${stackName}.json`)],
            });
            assert.match(
                result.stdout,
                /✅ peoples-cloud@v0\.1\.0/,
                `the policy pack did not run, or it refused:\n${result.stdout.slice(-2000)}`,
            );
            assert.deepEqual(plan.types, expected);
            const packages = new Set(Object.keys(expected).map((t) => t.split(":")[0]));
            assert.ok(
                plan.providers.every((p) => packages.has(p)),
                `providers ${plan.providers.join(", ")} for types ${[...packages].join(", ")}`,
            );
            // The stack counts as a create; default providers do not.
            assert.equal(
                result.changeSummary.create,
                Object.values(expected).reduce((a, b) => a + b, 1),
            );
            const secret = Object.values(testSecrets[stackName])[0];
            assert.ok(!result.stdout.includes(secret), "a secret appeared in the preview output");
            assert.ok(!readTree(engine.root).includes(secret), "a secret appeared in plain text on disk");
        });
    }

    it("refuses an invalid config before any resource, naming the key", async () => {
        const stack = await projectStack(engine, "broken", () => Promise.resolve(platform()), {
            configFrom: "dev",
            secrets: testSecrets.dev,
            plain: { "peoples-cloud:k3s": JSON.stringify({ version: "latest" }) },
        });
        const plan = new PlanRecorder();
        await assert.rejects(
            stack.preview({ onEvent: plan.onEvent }),
            /peoples-cloud:k3s\.version: expected a pinned K3s/,
        );
        assert.deepEqual(plan.types, {});
    });

    it("refuses a dev stack whose apps layer has an unpinned chart or image, naming the rules", async () => {
        // Past the schema, which refuses an image without a digest: the pack is the last line.
        const pinned = seaweedfs.chart.version;
        const stack = await projectStack(
            engine,
            "unpinned",
            () => {
                const config = loadConfig();
                config.settings.apps.images.storageS3Api = "ghcr.io/family/peoples-cloud-storage-s3-api:latest";
                config.settings.apps.images.storageKvApi = testImage("storage-kv-api");
                seaweedfs.chart.version = "4.x";
                return Promise.resolve(platform(config));
            },
            { configFrom: "dev", secrets: testSecrets.dev },
        );
        try {
            await assert.rejects(
                stack.preview({
                    policyPacks: [policyAnalyzer(path.join(repoRoot, "policy"))],
                    policyPackConfigs: [path.join(repoRoot, "policy", "config", "dev.json")],
                }),
                (err: Error) => {
                    assert.match(err.message, /images-pinned/);
                    assert.match(
                        err.message,
                        /Deployment\/storage-s3-api: container 'storage-s3-api' uses an unpinned image/,
                    );
                    assert.match(err.message, /helm-charts-pinned/);
                    assert.match(err.message, /chart 'seaweedfs' is not pinned to an exact version \(got '4\.x'\)/);
                    return true;
                },
            );
        } finally {
            seaweedfs.chart.version = pinned;
        }
    });
});
