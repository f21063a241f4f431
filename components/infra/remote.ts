// A script run on a node over SSH as a resource: run on create, and again whenever its script, its input or
// its triggers change. The engine runs it through the dynamic-provider plugin @pulumi/pulumi ships, with the
// system's OpenSSH client (@pulumi/command's plugin cannot be built on this machine; see the README's Tools).
// The SSH key is a secret input, written to a private temporary file for the run and removed after it.
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
    /** Given to the script on stdin (a config file, for instance); never a secret that must stay off disk. */
    stdin: string;
    /** Anything whose change must run the script again. */
    triggers: unknown[];
    /** Keep what the script prints (a public key, for instance) as the `stdout` output. */
    keepStdout: boolean;
}

interface ScriptOutputs extends Omit<ScriptInputs, "connection"> {
    /** The connection without its key: outputs never carry the key. */
    connection: Omit<SshConnection, "privateKey">;
    stdout: string;
}

function outputsOf(inputs: ScriptInputs, stdout: string): ScriptOutputs {
    const { host, port, user } = inputs.connection;
    // No undefined values: the engine's wire format does not carry them.
    const connection = port === undefined ? { host, user } : { host, port, user };
    return { ...inputs, connection, stdout: inputs.keepStdout ? stdout.trim() : "" };
}

async function runOverSsh(inputs: ScriptInputs): Promise<string> {
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
        inputs.script,
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
            JSON.stringify([s.script, s.stdin, s.triggers, s.connection.host, s.connection.port, s.connection.user]);
        return Promise.resolve({ changes: what(olds) !== what(news) });
    },
    async update(_id, _olds, news) {
        return { outs: outputsOf(news, await runOverSsh(news)) };
    },
};

export interface RemoteScriptArgs {
    node: string;
    step: string;
    connection: pulumi.Input<SshConnection>;
    script: string;
    stdin?: pulumi.Input<string>;
    triggers?: pulumi.Input<unknown>[];
    keepStdout?: boolean;
}

export class RemoteScript extends pulumi.dynamic.Resource {
    declare readonly stdout: pulumi.Output<string>;
    constructor(name: string, args: RemoteScriptArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            remoteScriptProvider,
            name,
            {
                node: args.node,
                step: args.step,
                connection: args.connection,
                script: args.script,
                stdin: args.stdin ?? "",
                triggers: args.triggers ?? [],
                keepStdout: args.keepStdout ?? false,
                stdout: undefined,
            },
            opts,
            "infra",
            "RemoteScript",
        );
    }
}
