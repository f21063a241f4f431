// The dynamic resources of the dev and prod programs, as the engine's dynamic-provider plugin would see them:
// each names a provider that lib/providers.ts exports, and none carries code in its state (lib/dynamic.ts).
import * as assert from "node:assert/strict";
import { createRequire } from "node:module";
import * as path from "node:path";
import * as vm from "node:vm";
import { providerLoader } from "../../lib/dynamic";
import { providers } from "../../lib/providers";
import { programResources } from "../helpers/program";
import { repoRoot } from "../helpers/stackConfig";

/** What the plugin does with a resource's `__provider`: evaluates it as a module and calls its handler. */
function load(text: string): unknown {
    const module = { exports: {} as { handler?: () => unknown } };
    // Resolved from the project's folder, where the engine starts the plugin.
    vm.runInNewContext(text, { exports: module.exports, require: createRequire(path.join(repoRoot, "index.ts")) });
    return module.exports.handler?.();
}

describe("dynamic resources of the programs", () => {
    for (const [stack, count] of [
        ["dev", 83],
        ["prod", 107],
    ] as const) {
        it(`${stack}: all ${count} name a provider of lib/providers.ts, and hold no code`, async () => {
            const dynamic = (await programResources(stack)).filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/"));
            assert.equal(dynamic.length, count, dynamic.map((r) => r.name).join(", "));
            for (const r of dynamic) {
                const text = r.inputs.__provider;
                assert.ok(typeof text === "string", `${r.name}: no __provider`);
                assert.ok(text.length < 300, `${r.name}: a __provider of ${text.length} characters is code`);
                const [, quoted] = /\.providers\[("(?:[^"\\]|\\.)*")\]/.exec(text) ?? [];
                assert.ok(quoted, `${r.name}: no provider named in ${text}`);
                const name = JSON.parse(quoted) as string;
                assert.ok(Object.hasOwn(providers, name), `${r.name}: lib/providers.ts has no provider '${name}'`);
                assert.equal(text, providerLoader(name), r.name);
            }
        });
    }

    it("a loader loads the very provider it names", () => {
        for (const [name, provider] of Object.entries(providers)) {
            assert.equal(load(providerLoader(name)), provider, name);
        }
    });
});
