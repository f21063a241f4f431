// A run killed in the middle of a remote step leaves no SSH private key on disk. With the real engine and a
// test host, an `up` runs a step that blocks on the host. While it blocks, then after SIGKILL to the
// dynamic-provider plugin (the engine carries on and fails the up), or to the engine and its plugins together
// (as a CI timeout or the OOM killer would), the key's text is in no file under the machine's temporary
// folders, the engine's folder or the test hosts' folders. The key is made for this test and its own files are
// removed at once, so any file holding it was written by the run.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { RemoteScript } from "../../lib/remote-script";
import { type Engine, projectStack, tempEngine } from "../helpers/engine";
import { filesHoldingKey, newSshKey, type SshKey, TEMP_FOLDERS } from "../helpers/keys";
import { commandLine, descendantsOf, isRunning } from "../helpers/processes";
import { startTestHosts, type TestHosts } from "../helpers/testhosts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function killAndWait(pids: number[]): Promise<void> {
    for (const pid of pids) process.kill(pid, "SIGKILL");
    for (let waited = 0; pids.some(isRunning); waited += 100) {
        if (waited > 10_000) throw new Error(`still running after SIGKILL: ${pids.filter(isRunning).join(" ")}`);
        await sleep(100);
    }
}

describe("a run killed mid-step", function () {
    this.timeout(10 * 60_000);
    let lab: TestHosts;
    let engine: Engine;
    let key: SshKey;

    before(async () => {
        lab = startTestHosts("pckil", 1);
        engine = await tempEngine();
        key = newSshKey("peoples-cloud-killed-run-test");
        lab.authorize(key.publicKey);
    });
    after(() => {
        engine?.cleanup();
        lab?.stop();
    });

    const keyFiles = () => filesHoldingKey(key.privateKey, [...TEMP_FOLDERS, engine.root, lab.dir]);

    /** Starts an `up` whose one remote step blocks on the host; returns once the step runs. */
    async function blockedUp(stackName: string) {
        const host = lab.hosts[0];
        const started = path.join(lab.dir, `${stackName}-started`);
        const stack = await projectStack(engine, stackName, () => {
            new RemoteScript("blocked", {
                node: host.name,
                step: "block",
                connection: pulumi.secret({ host: host.address, user: "root", privateKey: key.privateKey }),
                script: ': >"$STARTED"; exec sleep 600',
                env: { STARTED: started },
            });
            return Promise.resolve({});
        });
        const earlier = new Set(descendantsOf(process.pid));
        const up = stack.up().then(
            () => "the up finished",
            (err: Error) => err.message,
        );
        for (let waited = 0; !fs.existsSync(started); waited += 200) {
            if (waited > 300_000) throw new Error(`the step never started: ${await up}`);
            await sleep(200);
        }
        const enginePid = descendantsOf(process.pid).find(
            (pid) =>
                !earlier.has(pid) && / up /.test(commandLine(pid)) && /\/pulumi$/.test(commandLine(pid).split(" ")[0]),
        );
        assert.ok(enginePid, "the engine's process was not found");
        const plugins = descendantsOf(enginePid);
        const provider = plugins.filter((pid) =>
            /pulumi-resource-pulumi-nodejs|dynamic-provider/.test(commandLine(pid)),
        );
        assert.ok(provider.length > 0, "the dynamic-provider plugin is not running");
        return { up, enginePid, plugins, provider };
    }

    it("leaves no key on disk while a step runs, nor when its plugin is killed", async () => {
        const run = await blockedUp("plugin-killed");
        const during = keyFiles();
        await killAndWait(run.provider);
        assert.notEqual(await run.up, "the up finished");
        assert.deepEqual(keyFiles(), [], "the killed plugin left the SSH key on disk");
        assert.deepEqual(during, [], "the SSH key was on disk while the step ran");
    });

    it("leaves no key on disk when the engine and its plugins are killed mid-step", async () => {
        const run = await blockedUp("engine-killed");
        await killAndWait([run.enginePid, ...run.plugins]);
        assert.notEqual(await run.up, "the up finished");
        assert.deepEqual(keyFiles(), [], "the killed run left the SSH key on disk");
    });
});
