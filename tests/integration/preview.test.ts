// The real engine previews the real program of the dev and prod stacks, offline, from a fresh state.
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { platform } from "../../program";
import { type Engine, PlanRecorder, projectStack, readTree, tempEngine } from "../helpers/engine";
import { useMocks } from "../helpers/mocks";
import { rawConfig, repoRoot, stackFileValues } from "../helpers/stackConfig";

const testSecrets: Record<string, Record<string, string>> = {
    dev: { "peoples-cloud:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\npreview-test-only\n" },
    prod: { "hcloud:token": "preview-test-only-hcloud-token" },
};

async function mockedTypes(stack: string): Promise<Record<string, number>> {
    const recorded = await useMocks(stack, rawConfig(stackFileValues(stack), testSecrets[stack]));
    platform();
    const types: Record<string, number> = {};
    for (const r of recorded) types[r.type] = (types[r.type] ?? 0) + 1;
    return types;
}

describe("real pulumi preview", function () {
    this.timeout(10 * 60_000);
    let engine: Engine;
    before(async () => {
        engine = await tempEngine();
    });
    after(() => engine?.cleanup());

    for (const stackName of ["dev", "prod"]) {
        it(`previews the ${stackName} stack under the policy pack and plans what the mocked run declares`, async () => {
            const expected = await mockedTypes(stackName);
            const stack = await projectStack(engine, stackName, () => Promise.resolve(platform()), {
                configFrom: stackName,
                secrets: testSecrets[stackName],
            });
            const plan = new PlanRecorder();
            const result = await stack.preview({
                onEvent: plan.onEvent,
                policyPacks: [path.join(repoRoot, "policy")],
                policyPackConfigs: [path.join(repoRoot, "policy", "config", `${stackName}.json`)],
            });
            assert.match(result.stdout, /✅ peoples-cloud@v0\.1\.0/, "the policy pack did not run, or it refused");
            assert.deepEqual(plan.types, expected);
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
});
