// A generated secret and the engine's debug output, with the real engine and @pulumi/pulumi: the SDK logs each
// registration's response, decrypted secret outputs included, as a debug diagnostic. So the secret is in the
// engine's event stream and in `up --debug`'s output — which the project's tools never write anywhere — and in
// nothing the main command prints, nor in any file the run leaves (state, PULUMI_HOME, temporary files).
import * as assert from "node:assert/strict";
import { RandomToken } from "@peoples-cloud/lib/random-token";
import type { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { Progress } from "../../cli/progress";
import { runAction } from "../../cli/workspace";
import { type Engine, projectStack, tempEngine } from "../helpers/engine";
import { filesHolding, TEMP_FOLDERS } from "../helpers/keys";

describe("a generated secret and the engine's debug output", function () {
    this.timeout(600_000);
    let engine: Engine;
    let stack: Stack;
    let token: string;
    const events: EngineEvent[] = [];
    const upEvents: EngineEvent[] = [];
    let printed = "";

    before(async () => {
        engine = await tempEngine();
        stack = await projectStack(engine, "debug-secrets", () => {
            const generated = new RandomToken("debug-secret");
            return Promise.resolve({ token: generated.value });
        });
        await runAction(stack, "up", { onOutput: (text) => (printed += text), onEvent: (e) => upEvents.push(e) });
        token = (await stack.outputs()).token.value as string;
        assert.match(token, /^[0-9a-f]{64}$/);
        await stack.preview({ onEvent: (event) => events.push(event) });
    });
    after(() => engine?.cleanup());

    it("is in nothing the main command prints, on an up and on a preview of the stack holding it", async () => {
        await runAction(stack, "preview", { onOutput: (text) => (printed += text) });
        assert.match(printed, /RandomToken/, "the main command printed the engine's display");
        assert.ok(!printed.includes(token), "the main command printed the secret");
    });

    it("is in nothing the family tool's progress display shows of the up that made it", () => {
        assert.ok(JSON.stringify(upEvents).includes(token), "the up's events do not hold the secret");
        let shown = "";
        const progress = new Progress(false, (line) => (shown += `${line}\n`));
        for (const event of upEvents) progress.onEvent(event);
        progress.stop();
        assert.match(shown, /debug-secret/, "the progress display showed no resource");
        assert.ok(!shown.includes(token), "the progress display showed the secret");
    });

    it("is in no file the runs left: state, PULUMI_HOME, temporary files", () => {
        assert.deepEqual(filesHolding([token], [...TEMP_FOLDERS, engine.root]), []);
    });

    it("is in the engine's event stream only in debug diagnostics (what an event consumer must drop)", () => {
        const holding = events.filter((event) => JSON.stringify(event).includes(token));
        assert.ok(holding.length > 0, "no event holds the secret: the SDK no longer logs it; update the README");
        for (const event of holding) {
            assert.equal(event.diagnosticEvent?.severity, "debug", JSON.stringify(Object.keys(event)));
            assert.match(event.diagnosticEvent.message, /^RegisterResource RPC finished: /);
        }
    });

    it("is printed by `up --debug` (so the project's tools never pass it)", async () => {
        let debugOutput = "";
        await stack.up({ debug: true, onOutput: (text) => (debugOutput += text) }).catch((err: Error) => {
            throw new Error(err.message.replaceAll(token, "[secret]")); // a failed run's message quotes its output
        });
        assert.ok(debugOutput.includes(token), "--debug no longer prints the secret: update the README");
    });
});
