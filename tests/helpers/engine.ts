// The real Pulumi engine for integration tests: the CLI built by scripts/tools.sh, a fresh file:// backend and
// PULUMI_HOME in a temporary folder, the passphrase secrets provider, no network.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { toolsBinDir } from "@peoples-cloud/testkit";
import { LocalWorkspace, PulumiCommand, type EngineEvent, type PulumiFn, type Stack } from "@pulumi/pulumi/automation";
import * as yaml from "js-yaml";
import { repoRoot, stackFileValues } from "./stackConfig";

export interface Engine {
    command: PulumiCommand;
    /** Environment for every engine run; holds the passphrase, so never print it. */
    envVars: Record<string, string>;
    root: string;
    binDir: string;
    cleanup(): void;
}

export async function tempEngine(): Promise<Engine> {
    const binDir = toolsBinDir("engine");
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-engine-"));
    const backend = path.join(root, "state");
    fs.mkdirSync(backend);
    const command = await PulumiCommand.get({ root: path.dirname(binDir) });
    const envVars = {
        PULUMI_HOME: path.join(root, "home"),
        PULUMI_BACKEND_URL: `file://${backend}`,
        PULUMI_CONFIG_PASSPHRASE: randomBytes(24).toString("base64url"),
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_DISABLE_REGISTRY_RESOLVE: "true",
        PATH: `${binDir}:${process.env.PATH ?? ""}`,
    };
    return { command, envVars, root, binDir, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

/** A stack of this project with an inline program, its config taken from Pulumi.<configFrom>.yaml. */
export async function projectStack(
    engine: Engine,
    stackName: string,
    program: PulumiFn,
    options: { configFrom?: string; secrets?: Record<string, string>; plain?: Record<string, string> } = {},
): Promise<Stack> {
    const workDir = fs.mkdtempSync(path.join(engine.root, "work-"));
    fs.copyFileSync(path.join(repoRoot, "Pulumi.yaml"), path.join(workDir, "Pulumi.yaml"));
    // Plugins the SDK ships (the dynamic provider) resolve @pulumi/pulumi from the project folder.
    fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(workDir, "node_modules"));
    if (options.configFrom) {
        // Only the plain settings: a developer's own encrypted secrets and salt stay out of the test stack.
        const config = Object.fromEntries(
            Object.entries(stackFileValues(options.configFrom)).map(([k, v]) => [k, decodeYamlValue(v)]),
        );
        fs.writeFileSync(path.join(workDir, `Pulumi.${stackName}.yaml`), yaml.dump({ config }));
    }
    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName, projectName: "peoples-cloud", program },
        { workDir, pulumiCommand: engine.command, envVars: engine.envVars },
    );
    for (const [key, value] of Object.entries(options.secrets ?? {})) {
        await stack.setConfig(key, { value, secret: true });
    }
    for (const [key, value] of Object.entries(options.plain ?? {})) {
        await stack.setConfig(key, { value, secret: false });
    }
    return stack;
}

function decodeYamlValue(value: string): unknown {
    return value.startsWith("{") || value.startsWith("[") ? JSON.parse(value) : value;
}

/** Counts of resource types the engine planned, from its event stream; the stack itself is left out. */
export class PlanRecorder {
    /** Resources by type, without the stack and the default providers (which mocks never see). */
    readonly types: Record<string, number> = {};
    /** The packages whose default provider the plan makes, e.g. "pulumi-nodejs" for dynamic resources. */
    readonly providers: string[] = [];
    readonly onEvent = (event: EngineEvent) => {
        const meta = event.resourcePreEvent?.metadata;
        if (!meta || meta.type === "pulumi:pulumi:Stack") return;
        if (meta.type.startsWith("pulumi:providers:")) {
            this.providers.push(meta.type.slice("pulumi:providers:".length));
            return;
        }
        this.types[meta.type] = (this.types[meta.type] ?? 0) + 1;
    };
}

/** Every file under a folder (symbolic links not followed) as text, to search state and logs for plaintext. */
export function readTree(dir: string): string {
    if (!fs.existsSync(dir)) return "";
    // Not readdirSync's `recursive`: on Node.js 26 (not 20) it follows symbolic links, into node_modules.
    return fs
        .readdirSync(dir, { withFileTypes: true })
        .map((e) => {
            const file = path.join(dir, e.name);
            return e.isDirectory() ? readTree(file) : e.isFile() ? fs.readFileSync(file, "utf8") : "";
        })
        .join("\n");
}
