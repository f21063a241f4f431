// A bash script run on a node over SSH as a resource: run on create, and again whenever its script, its
// input, its environment or its triggers change; an optional second script runs when the resource is deleted.
// The engine runs it through the dynamic-provider plugin @pulumi/pulumi ships, with the system's OpenSSH
// client (@pulumi/command's plugin cannot be built on this machine; see the README's Tools). The SSH key is
// a secret input, written to a private temporary file for the run and removed after it.
import * as pulumi from "@pulumi/pulumi";
import { shellQuote, type SshConnection, withSsh } from "./ssh";

export type { SshConnection } from "./ssh";

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

async function runOverSsh(
    inputs: Pick<ScriptInputs, "node" | "step" | "connection" | "env" | "stdin"> & { script: string },
): Promise<string> {
    /* eslint-disable-next-line @typescript-eslint/no-require-imports -- the provider is serialised: it loads what it needs */
    const { execFile } = require("node:child_process") as typeof import("node:child_process");
    const command = remoteCommand(inputs.script, inputs.env, inputs.step);
    return withSsh(
        inputs.connection,
        (sshArgs) =>
            new Promise<string>((resolve, reject) => {
                const options = { maxBuffer: 1024 * 1024, timeout: 600_000 };
                const child = execFile("ssh", [...sshArgs, command], options, (err, stdout, stderr) => {
                    if (!err) return resolve(stdout);
                    const code = typeof err.code === "number" ? err.code : "none";
                    const last = String(stderr).trim().split("\n").pop() ?? "";
                    reject(new Error(`${inputs.step} on ${inputs.node} failed (exit ${code}): ${last}`));
                });
                child.stdin?.end(inputs.stdin);
            }),
    );
}

const remoteScriptProvider: pulumi.dynamic.ResourceProvider<ScriptInputs, ScriptOutputs> = {
    async create(inputs) {
        return { id: `${inputs.node}/${inputs.step}`, outs: outputsOf(inputs, await runOverSsh(inputs)) };
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
            ]);
        return Promise.resolve({ changes: what(olds) !== what(news) });
    },
    async update(_id, _olds, news) {
        return { outs: outputsOf(news, await runOverSsh(news)) };
    },
    async delete(_id, olds) {
        if (!olds.deleteScript || !olds.connection.privateKey) return;
        const connection = { ...olds.connection, privateKey: olds.connection.privateKey };
        await runOverSsh({ ...olds, connection, step: `${olds.step} (delete)`, script: olds.deleteScript });
    },
};

export interface RemoteScriptArgs {
    node: string;
    step: string;
    connection: pulumi.Input<SshConnection>;
    script: string;
    env?: Record<string, pulumi.Input<string>>;
    stdin?: pulumi.Input<string>;
    triggers?: pulumi.Input<unknown>[];
    keepStdout?: boolean;
    deleteScript?: string;
    /** Marks stdin and stdout secret in the state (a token given, a kubeconfig read). */
    secretIo?: boolean;
}

export class RemoteScript extends pulumi.dynamic.Resource {
    declare readonly stdout: pulumi.Output<string>;
    declare readonly stdin: pulumi.Output<string>;
    constructor(name: string, args: RemoteScriptArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            remoteScriptProvider,
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
            "infra",
            "RemoteScript",
        );
    }
}
