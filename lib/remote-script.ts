// A bash script run on a node over SSH as a resource: run on create, and again whenever its script, its
// input, its environment or its triggers change; an optional second script runs when the resource is deleted.
// It stands in for @pulumi/command's remote.Command, whose plugin cannot be built on this machine (see the
// README's "Seams"). The SSH key is a secret input and reaches ssh as lib/ssh.ts describes.
import type * as pulumi from "@pulumi/pulumi";
import { DynamicResource, type Provider } from "./dynamic";
import { runSsh, shellQuote, type SshConnection } from "./ssh";

export type { SshConnection } from "./ssh";

/** A machine a remote step runs on: its name for messages, and how SSH reaches it (a secret). */
export interface RemoteHost {
    readonly name: string;
    readonly connection: pulumi.Input<SshConnection>;
    /** The generation of its installation (lib/node-installation.ts): its steps run again when it grows. */
    readonly installation?: pulumi.Input<number>;
}

interface ScriptInputs {
    /** The node's name and the step's, for messages. */
    node: string;
    step: string;
    connection: SshConnection;
    script: string;
    /** Plain settings for the script, as environment variables (never secrets: they are on its command line). */
    env: Record<string, string>;
    /** Given to the script on stdin: a config file, or a secret (mark the resource's stdin output secret). */
    stdin: string;
    /** Anything whose change must run the script again. */
    triggers: unknown[];
    /** Keep what the script prints (a public key, for instance) as the `stdout` output. */
    keepStdout: boolean;
    /** Run on delete, on the same connection; "" for none. */
    deleteScript: string;
    /** The generation of the node's installation (lib/node-installation.ts); absent counts as 1. */
    installation?: number;
}

interface ScriptOutputs extends Omit<ScriptInputs, "connection"> {
    /** Without its key, unless a delete script needs it later (then the output is secret). */
    connection: Omit<SshConnection, "privateKey"> & { privateKey?: string };
    stdout: string;
}

function outputsOf(inputs: ScriptInputs, stdout: string): ScriptOutputs {
    const { host, port, user, privateKey } = inputs.connection;
    // No undefined values: the engine's wire format does not carry them.
    const connection = {
        host,
        user,
        ...(port === undefined ? {} : { port }),
        ...(inputs.deleteScript ? { privateKey } : {}),
    };
    return { ...inputs, connection, stdout: inputs.keepStdout ? stdout.trim() : "" };
}

/** The remote command: bash running the script, whatever the login shell, with its settings in the env. */
export function remoteCommand(script: string, env: Record<string, string>, step: string): string {
    const assignments = Object.entries(env).map(([k, v]) => {
        if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`${step}: '${k}' is not an environment variable name`);
        return `${k}=${shellQuote(v)}`;
    });
    return ["env", ...assignments, "bash", "-c", shellQuote(script), shellQuote(step)].join(" ");
}

/** Runs a script on a node over SSH, as a remote step does; a failure names the node and the step. */
export function runOverSsh(
    inputs: Pick<ScriptInputs, "node" | "step" | "connection" | "env" | "stdin"> & { script: string },
): Promise<string> {
    return runSsh(inputs.connection, remoteCommand(inputs.script, inputs.env, inputs.step), {
        stdin: inputs.stdin,
        timeoutMs: 600_000,
        describe: (code, lastLine) => `${inputs.step} on ${inputs.node} failed (exit ${code}): ${lastLine}`,
    });
}

/** The script's environment: its settings, and the generation of its node's installation when it has one. */
function runStep(inputs: ScriptInputs): Promise<string> {
    const env = { ...inputs.env };
    if (inputs.installation !== undefined) env.NODE_INSTALLATION = String(inputs.installation);
    return runOverSsh({ ...inputs, env });
}

export const remoteScriptProvider: Provider<ScriptInputs, ScriptOutputs> = {
    async create(inputs) {
        return { id: `${inputs.node}/${inputs.step}`, outs: outputsOf(inputs, await runStep(inputs)) };
    },
    diff(_id, olds, news) {
        const what = (s: ScriptInputs | ScriptOutputs) =>
            JSON.stringify([
                s.script,
                s.env,
                s.stdin,
                s.triggers,
                s.deleteScript,
                s.connection.host,
                s.connection.port,
                s.connection.user,
                // Absent in the state of steps made before installations were counted: the same as the first.
                s.installation ?? 1,
            ]);
        return Promise.resolve({ changes: what(olds) !== what(news) });
    },
    async update(_id, _olds, news) {
        return { outs: outputsOf(news, await runStep(news)) };
    },
    async delete(_id, olds) {
        if (!olds.deleteScript || !olds.connection.privateKey) return;
        const connection = { ...olds.connection, privateKey: olds.connection.privateKey };
        await runOverSsh({ ...olds, connection, step: `${olds.step} (delete)`, script: olds.deleteScript });
    },
};

export interface RemoteScriptArgs {
    /** The node's name, for messages. */
    readonly node: string;
    /** What the script does, for messages: "install k3s". */
    readonly step: string;
    readonly connection: pulumi.Input<SshConnection>;
    /** The bash script's text (from `scriptsIn`). */
    readonly script: string;
    /** Plain settings for the script, as environment variables: never secrets (they are on its command line). */
    readonly env?: Record<string, pulumi.Input<string>>;
    /** Given to the script on stdin: a config file, or a secret (with `secretIo`). */
    readonly stdin?: pulumi.Input<string>;
    /** Anything whose change must run the script again. */
    readonly triggers?: pulumi.Input<unknown>[];
    /** Keep what the script prints (a public key, for instance) as the `stdout` output. */
    readonly keepStdout?: boolean;
    /** Run when the resource is deleted, on the same connection, env and stdin; its `$0` is "<step> (delete)". */
    readonly deleteScript?: string;
    /** Marks stdin and stdout secret in the state (a token given, a kubeconfig read). */
    readonly secretIo?: boolean;
    /**
     * The generation of the installation of the machine the step is about (NodeInstallation): when it grows,
     * the machine was reinstalled and the step runs again. The script sees it as NODE_INSTALLATION (not among
     * the declared settings: it is unknown until the machine was looked at, and a preview checks those).
     */
    readonly installation?: pulumi.Input<number>;
}

export class RemoteScript extends DynamicResource {
    declare readonly stdout: pulumi.Output<string>;
    declare readonly stdin: pulumi.Output<string>;
    constructor(name: string, args: RemoteScriptArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            "remote-script",
            { module: "infra", name: "RemoteScript" },
            name,
            {
                node: args.node,
                step: args.step,
                connection: args.connection,
                script: args.script,
                env: args.env ?? {},
                stdin: args.stdin ?? "",
                triggers: args.triggers ?? [],
                keepStdout: args.keepStdout ?? false,
                deleteScript: args.deleteScript ?? "",
                ...(args.installation === undefined ? {} : { installation: args.installation }),
                stdout: undefined,
            },
            {
                ...opts,
                additionalSecretOutputs: [
                    ...(opts?.additionalSecretOutputs ?? []),
                    ...(args.deleteScript ? ["connection"] : []),
                    ...(args.secretIo ? ["stdin", "stdout"] : []),
                ],
            },
        );
    }
}
