// The README's main job: the real engine runs the program on a stack of this folder through the family tool's
// workspace (cli/workspace.ts: local file backend, passphrase provider, the engine tools.sh built), printing
// the engine's display output. On an ordinary machine plain `pulumi preview` does the same.
//
//   tsx scripts/run-stack.ts <preview|up|destroy> [--stack dev] [--policy-pack policy]
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { Stack } from "@pulumi/pulumi/automation";
import { openWorkspace, runAction, type Action } from "../cli/workspace";
import { secretKeys } from "../stacks/config";

/** The dev stack describes test hosts; give it a throwaway SSH key, as a secret, when none was set. */
function throwawayDevKey(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-key-"));
    try {
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "peoples-cloud-dev", "-f", `${dir}/id`]);
        return fs.readFileSync(`${dir}/id`, "utf8");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

async function main(): Promise<void> {
    const { positionals, values } = parseArgs({
        allowPositionals: true,
        options: { stack: { type: "string", default: "dev" }, "policy-pack": { type: "string" } },
    });
    const action = positionals[0] as Action;
    if (!["preview", "up", "destroy"].includes(action)) {
        throw new Error("usage: run-stack.ts <preview|up|destroy> [--stack dev] [--policy-pack policy]");
    }
    const stack = await Stack.createOrSelect(values.stack, await openWorkspace({}));
    if (values.stack === "dev") {
        const config = await stack.getAllConfig();
        if (!(secretKeys.sshPrivateKey in config)) {
            console.error(`run-stack: ${secretKeys.sshPrivateKey} unset; setting a throwaway key as a secret for dev`);
            await stack.setConfig(secretKeys.sshPrivateKey, { value: throwawayDevKey(), secret: true });
        }
    }
    const policyPacks = values["policy-pack"] ? [values["policy-pack"]] : undefined;
    await runAction(stack, action, { policyPacks, onOutput: (text) => process.stdout.write(text) });
}

main().catch((err: unknown) => {
    // The engine's own output was already streamed; print only what failed, never a stack trace of secrets.
    console.error(err instanceof Error ? err.message.split("\n").slice(-20).join("\n") : err);
    process.exit(1);
});
