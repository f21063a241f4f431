// Where a family's stacks live and how the engine is run on them: one project folder (Pulumi.yaml and the
// families' Pulumi.<family>.yaml), a backend (a local folder by default, any Pulumi backend URL otherwise), the
// passphrase secrets provider, and the engine scripts/tools.sh builds. The family tool and scripts/main.sh both
// run the engine through here.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, Stack, type EngineEvent, type StackSummary } from "@pulumi/pulumi/automation";
import { platform } from "../program";
import { projectDir, repoRoot, UsageError, type WorkspaceOptions } from "./project";

const stateHome = () => process.env.XDG_STATE_HOME ?? path.join(os.homedir(), ".local", "state");
const configHome = () => process.env.XDG_CONFIG_HOME ?? path.join(os.homedir(), ".config");

/** The backend URL these options name, without touching it. */
export function backendUrl(options: WorkspaceOptions): string {
    return (
        options.backendUrl ??
        process.env.PULUMI_BACKEND_URL ??
        `file://${path.join(stateHome(), "peoples-cloud", "backend")}`
    );
}

export const passphraseFile = () => path.join(configHome(), "peoples-cloud", "passphrase");

/**
 * The passphrase secrets provider's key: PULUMI_CONFIG_PASSPHRASE(_FILE) from the environment, else the local
 * passphrase file, made (0600) on first use. Called only once a command is known to be valid: a refused
 * command writes nothing.
 */
function passphraseEnv(): Record<string, string> {
    if (process.env.PULUMI_CONFIG_PASSPHRASE || process.env.PULUMI_CONFIG_PASSPHRASE_FILE) return {};
    const file = passphraseFile();
    if (!fs.existsSync(file)) {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        fs.writeFileSync(file, execFileSync("openssl", ["rand", "-base64", "32"]), { mode: 0o600 });
        console.error(`Created the passphrase that encrypts your families' secrets: ${file}. Keep a copy offline.`);
    }
    return { PULUMI_CONFIG_PASSPHRASE_FILE: file };
}

/** The engine's environment: backend, PULUMI_HOME, passphrase, the tools' bin dir first on PATH. */
function engineEnv(options: WorkspaceOptions & { secrets?: boolean }, binDir: string): Record<string, string> {
    const url = backendUrl(options);
    if (url.startsWith("file://")) fs.mkdirSync(url.slice("file://".length), { recursive: true });
    return {
        PULUMI_BACKEND_URL: url,
        PULUMI_HOME: process.env.PULUMI_HOME ?? path.join(stateHome(), "peoples-cloud", "pulumi-home"),
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PATH: `${binDir}:${process.env.PATH ?? ""}`,
        ...(options.secrets === false ? {} : passphraseEnv()),
    };
}

/**
 * The project's workspace on the backend, with the real program inline. `secrets: false` for a look at the
 * backend that decrypts nothing, so no passphrase is made for it.
 */
export async function openWorkspace(options: WorkspaceOptions & { secrets?: boolean }): Promise<LocalWorkspace> {
    const workDir = projectDir(options);
    const { binDir, command } = await engine();
    return LocalWorkspace.create({
        workDir,
        program: () => Promise.resolve(platform()),
        pulumiCommand: command,
        envVars: engineEnv(options, binDir),
    });
}

/** The engine tools.sh built, found once per process (a command opens several workspaces; `device join` polls). */
let located: Promise<{ binDir: string; command: PulumiCommand }> | undefined;
function engine(): Promise<{ binDir: string; command: PulumiCommand }> {
    located ??= (async () => {
        const binDir = execFileSync("bash", [path.join(repoRoot, "scripts", "tools.sh"), "--bin-dir", "engine"], {
            encoding: "utf8",
        }).trim();
        return { binDir, command: await PulumiCommand.get({ root: path.dirname(binDir) }) };
    })();
    return located;
}

/** Whether the workspace's backend holds a stack of this family (a bare or an organisation-qualified name). */
export async function hasFamily(workspace: LocalWorkspace, family: string): Promise<boolean> {
    const stacks: StackSummary[] = await workspace.listStacks();
    return stacks.some((s) => s.name === family || s.name.endsWith(`/${family}`));
}

/** A family's stack, which must exist: looked for without the passphrase, so a refusal makes none. */
export async function selectFamily(options: WorkspaceOptions, family: string): Promise<Stack> {
    const lookout = await openWorkspace({ ...options, secrets: false });
    if (!(await hasFamily(lookout, family))) {
        throw new UsageError(
            `there is no family '${family}' in ${lookout.envVars.PULUMI_BACKEND_URL}; ` +
                `make it with: peoples-cloud new ${family} ...`,
        );
    }
    return Stack.select(family, await openWorkspace(options));
}

export type Action = "preview" | "up" | "destroy";

/**
 * The resources that live on the family's machines, as the engine's URN patterns: the infra layer (WireGuard,
 * K3s) and the etcd snapshots' settings. An up limited to them sets up machines that are new without touching
 * the cluster's contents.
 */
export const MACHINE_RESOURCES = ["**peoples-cloud:infra:InfraLayer**", "**peoples-cloud:backup:EtcdSnapshots**"];

/** The kubeconfig read from the first server: read again after the cluster was reset onto a new machine. */
export const KUBECONFIG_READ =
    "**peoples-cloud:infra:K3sCluster$pulumi-nodejs:dynamic/infra:RemoteScript::*-kubeconfig";

/** Limits an up: only these resources (`target`), or these replaced (`replace`); URN patterns. */
export interface UpScope {
    target?: string[];
    replace?: string[];
}

/** A policy pack's folder given as its launcher, which the engine runs without a Node.js language host. */
export const policyAnalyzer = (packDir: string) => path.join(path.resolve(packDir), "analyzer");

/**
 * Runs one action; `onEvent` sees the engine's events, `onOutput` its display text. Never `--debug`:
 * @pulumi/pulumi logs each registration's response, decrypted secrets included, as a debug diagnostic
 * (README: "Troubleshooting"); whoever shows events must leave debug diagnostics out (see progress.ts).
 */
export async function runAction(
    stack: Stack,
    action: Action,
    options: {
        /** Policy packs' folders. */
        policyPacks?: string[];
        onOutput?: (text: string) => void;
        onEvent?: (event: EngineEvent) => void;
        /** For an up only. */
        scope?: UpScope;
    },
): Promise<{ changes: Record<string, number> }> {
    const { onOutput, onEvent, scope } = options;
    const policyPacks = options.policyPacks?.map(policyAnalyzer);
    if (action === "preview") {
        const result = await stack.preview({ onOutput, onEvent, policyPacks });
        return { changes: result.changeSummary };
    }
    const result =
        action === "up"
            ? await stack.up({ onOutput, onEvent, policyPacks, ...scope })
            : await stack.destroy({ onOutput, onEvent });
    return { changes: result.summary.resourceChanges ?? {} };
}

/**
 * The stack's state as `pulumi stack export` gives it: secrets stay ciphertext. (The SDK's `exportStack` adds
 * `--show-secrets`, which would write every secret in plain text.)
 */
export function exportEncrypted(stack: Stack): unknown {
    const workspace = stack.workspace as LocalWorkspace;
    const stdout = execFileSync(workspace.pulumiCommand.command, ["stack", "export", "--stack", stack.name], {
        cwd: workspace.workDir,
        env: { ...process.env, ...workspace.envVars },
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
    });
    return JSON.parse(stdout) as unknown;
}
