// A bash script run on a node over SSH as a resource: run on create, and again whenever its script, its
// input, its environment or its triggers change; an optional second script runs when the resource is deleted.
// The engine runs it through the dynamic-provider plugin @pulumi/pulumi ships, with the system's OpenSSH
// client (@pulumi/command's plugin cannot be built on this machine; see the README's Tools). The SSH key is
// a secret input, written to a private temporary file for the run and removed after it.
import * as pulumi from "@pulumi/pulumi";

export interface SshConnection {
    host: string;
    port?: number;
    user: string;
    privateKey: string;
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
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const assignments = Object.entries(env).map(([k, v]) => {
        if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`${step}: '${k}' is not an environment variable name`);
        return `${k}=${quote(v)}`;
    });
    return ["env", ...assignments, "bash", "-c", quote(script), quote(step)].join(" ");
}

async function runOverSsh(
    inputs: Pick<ScriptInputs, "node" | "step" | "connection" | "env" | "stdin"> & { script: string },
): Promise<string> {
    /* eslint-disable @typescript-eslint/no-require-imports -- the provider is serialised: it loads what it needs */
    const { execFile } = require("node:child_process") as typeof import("node:child_process");
    const fs = require("node:fs") as typeof import("node:fs");
    const os = require("node:os") as typeof import("node:os");
    const path = require("node:path") as typeof import("node:path");
    /* eslint-enable @typescript-eslint/no-require-imports */
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-ssh-"));
    const key = path.join(dir, "key");
    fs.writeFileSync(
        key,
        inputs.connection.privateKey.endsWith("\n")
            ? inputs.connection.privateKey
            : `${inputs.connection.privateKey}\n`,
        {
            mode: 0o600,
        },
    );
    const args = [
        "-i",
        key,
        "-p",
        String(inputs.connection.port ?? 22),
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=15",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        `UserKnownHostsFile=${path.join(dir, "known_hosts")}`,
        "-o",
        "LogLevel=ERROR",
        `${inputs.connection.user}@${inputs.connection.host}`,
        remoteCommand(inputs.script, inputs.env, inputs.step),
    ];
    try {
        return await new Promise<string>((resolve, reject) => {
            const child = execFile("ssh", args, { maxBuffer: 1024 * 1024, timeout: 600_000 }, (err, stdout, stderr) => {
                if (!err) return resolve(stdout);
                const code = typeof err.code === "number" ? err.code : "none";
                const last = String(stderr).trim().split("\n").pop() ?? "";
                reject(new Error(`${inputs.step} on ${inputs.node} failed (exit ${code}): ${last}`));
            });
            child.stdin?.end(inputs.stdin);
        });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
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
