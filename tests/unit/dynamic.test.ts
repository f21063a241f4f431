// The dynamic-provider loader: the text a resource's state holds names its provider and loads it as the
// engine's plugin does (from the project folder, in plain Node.js); a state written by an earlier version,
// with serialised provider code, moves to the loader in one update that runs nothing.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import type * as pulumi from "@pulumi/pulumi";
import { loadable, type Provider, providerLoader } from "../../lib/dynamic";
import { providers } from "../../lib/providers";
import { remoteScriptProvider } from "../../lib/remote-script";
import { repoRoot } from "../helpers/stackConfig";

interface Props {
    value: string;
    __provider?: string;
}

function recordingProvider() {
    const calls: string[] = [];
    const diffs = { count: 0 };
    const provider: Provider<Props, Props> = {
        create: (inputs) => {
            calls.push("create");
            return Promise.resolve({ id: "x", outs: inputs });
        },
        diff: (_id, olds, news) => {
            diffs.count++;
            return Promise.resolve({ changes: olds.value !== news.value });
        },
        update: (_id, _olds, news) => {
            calls.push("update");
            return Promise.resolve({ outs: news });
        },
    };
    return { provider: loadable(provider), calls, diffs };
}

describe("dynamic-provider loader", () => {
    it("is a short text naming the provider, and loads it in a plain Node.js process from the project folder", function () {
        this.timeout(60_000);
        const texts = Object.keys(providers).map((name) => [name, providerLoader(name)]);
        for (const [name, text] of texts) assert.ok(text.length < 200, `${name}: ${text.length} characters`);
        // What the engine's plugin does with each: require-from-string, then handler().
        const probe =
            `const load = require("require-from-string");` +
            `const kinds = ${JSON.stringify(texts)}.map(([name, text]) => {` +
            `  const p = load(text).handler(); return [name, typeof p.create, typeof p.diff]; });` +
            `process.stdout.write(JSON.stringify(kinds));`;
        const kinds = JSON.parse(execFileSync("node", ["-e", probe], { cwd: repoRoot, encoding: "utf8" })) as unknown;
        assert.deepEqual(
            kinds,
            texts.map(([name]) => [name, "function", "function"]),
        );
    });

    it("moves a resource from serialised code to the loader in an update that runs nothing", async () => {
        const { provider, calls } = recordingProvider();
        const olds = { value: "a", __provider: "exports.handler = …serialised code…" };
        const news = { value: "a", __provider: providerLoader("remote-script") };
        assert.equal((await provider.diff!("x", olds, news)).changes, true);
        const { outs } = await provider.update!("x", olds, news);
        assert.deepEqual(outs, { value: "a" }, "the outputs are kept, the old code dropped");
        assert.deepEqual(calls, [], "nothing ran");
    });

    it("leaves every other diff and update to the provider", async () => {
        const { provider, calls, diffs } = recordingProvider();
        const loader = providerLoader("remote-script");
        const same = await provider.diff!("x", { value: "a", __provider: loader }, { value: "a", __provider: loader });
        assert.equal(same.changes, false);
        const changed: pulumi.dynamic.DiffResult = await provider.diff!(
            "x",
            { value: "a", __provider: loader },
            { value: "b", __provider: loader },
        );
        assert.equal(changed.changes, true);
        const diffsBefore = diffs.count;
        await provider.update!("x", { value: "a", __provider: loader }, { value: "b", __provider: loader });
        assert.deepEqual(calls, ["update"]);
        assert.equal(diffs.count, diffsBefore, "an update under the same provider text asks for no second diff");
    });
});

describe("a remote step's diff and the installation of its machine", () => {
    const step = {
        node: "node-1",
        step: "apply wg0",
        connection: { host: "192.0.2.1", user: "root", privateKey: "test-only" },
        script: "true",
        env: {},
        stdin: "",
        triggers: [],
        keepStdout: false,
        deleteScript: "",
    };
    type Olds = Parameters<typeof remoteScriptProvider.diff>[1];
    type News = Parameters<typeof remoteScriptProvider.diff>[2];
    const diff = (olds: object, news: object) =>
        remoteScriptProvider.diff("node-1/apply wg0", { stdout: "", ...olds } as Olds, news as News);

    it("runs nothing again for a step made before installations were counted (its state has none)", async () => {
        assert.equal((await diff(step, { ...step, installation: 1 })).changes, false);
    });

    it("runs the step again once its machine was reinstalled", async () => {
        assert.equal((await diff({ ...step, installation: 1 }, { ...step, installation: 2 })).changes, true);
        assert.equal((await diff(step, { ...step, installation: 2 })).changes, true);
    });
});
