// Runs the program with the real engine through the Automation API, for a machine whose Pulumi CLI has no
// Node.js language host (see README: "Tools"). On an ordinary machine plain `pulumi preview` does the same.
//
//   tsx scripts/run-stack.ts <preview|up|destroy> [--stack dev] [--policy-pack policy]
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { platform } from "../program";
import { secretKeys } from "../stacks/config";

const repo = path.resolve(__dirname, "..");
const stateHome = process.env.XDG_STATE_HOME ?? path.join(os.homedir(), ".local", "state");
const configHome = process.env.XDG_CONFIG_HOME ?? path.join(os.homedir(), ".config");

function passphraseEnv(): Record<string, string> {
    if (process.env.PULUMI_CONFIG_PASSPHRASE || process.env.PULUMI_CONFIG_PASSPHRASE_FILE) return {};
    const file = path.join(configHome, "peoples-cloud", "passphrase");
    if (!fs.existsSync(file)) {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        fs.writeFileSync(file, execFileSync("openssl", ["rand", "-base64", "32"]), { mode: 0o600 });
        console.error(`run-stack: created a passphrase for local stacks in ${file}; keep it safe`);
    }
    return { PULUMI_CONFIG_PASSPHRASE_FILE: file };
}

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

export type Action = "preview" | "up" | "destroy";

/** A policy pack's folder given as its launcher, which the engine runs without a Node.js language host. */
export const policyAnalyzer = (packDir: string) => path.join(path.resolve(packDir), "analyzer");

/**
 * Runs one action and writes the engine's display output, nothing else. Never its event stream or `--debug`:
 * @pulumi/pulumi logs each registration's response, decrypted secrets included, as a debug diagnostic
 * (README: "Troubleshooting").
 */
export async function runAction(
    stack: Stack,
    action: Action,
    options: { /** Policy packs' folders. */ policyPacks?: string[]; write: (text: string) => void },
): Promise<void> {
    const { write: onOutput } = options;
    const policyPacks = options.policyPacks?.map(policyAnalyzer);
    if (action === "preview") await stack.preview({ onOutput, policyPacks });
    if (action === "up") await stack.up({ onOutput, policyPacks });
    if (action === "destroy") await stack.destroy({ onOutput });
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
    const binDir = execFileSync("bash", [path.join(repo, "scripts", "tools.sh"), "--bin-dir", "engine"], {
        encoding: "utf8",
    }).trim();
    const backend = path.join(stateHome, "peoples-cloud", "backend");
    fs.mkdirSync(backend, { recursive: true });
    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: values.stack, projectName: "peoples-cloud", program: () => Promise.resolve(platform()) },
        {
            workDir: repo,
            pulumiCommand: await PulumiCommand.get({ root: path.dirname(binDir) }),
            envVars: {
                PULUMI_BACKEND_URL: process.env.PULUMI_BACKEND_URL ?? `file://${backend}`,
                PULUMI_HOME: process.env.PULUMI_HOME ?? path.join(stateHome, "peoples-cloud", "pulumi-home"),
                PULUMI_SKIP_UPDATE_CHECK: "true",
                PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
                PATH: `${binDir}:${process.env.PATH ?? ""}`,
                ...passphraseEnv(),
            },
        },
    );
    if (values.stack === "dev") {
        const config = await stack.getAllConfig();
        if (!(secretKeys.sshPrivateKey in config)) {
            console.error(`run-stack: ${secretKeys.sshPrivateKey} unset; setting a throwaway key as a secret for dev`);
            await stack.setConfig(secretKeys.sshPrivateKey, { value: throwawayDevKey(), secret: true });
        }
    }
    const policyPacks = values["policy-pack"] ? [values["policy-pack"]] : undefined;
    await runAction(stack, action, { policyPacks, write: (text) => process.stdout.write(text) });
}

if (require.main === module) {
    main().catch((err: unknown) => {
        // The engine's own output was already streamed; print only what failed, never a stack trace of secrets.
        console.error(err instanceof Error ? err.message.split("\n").slice(-20).join("\n") : err);
        process.exit(1);
    });
}
