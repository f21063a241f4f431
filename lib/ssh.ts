// The one way the program runs a command on a machine over SSH, for the remote steps and the Vault operator:
// ssh2, an SSH client in JavaScript, with the private key held in memory only. No key file is ever written,
// so a run that is killed (the engine cancels its plugin, a timeout, a crash) leaves no key on disk. Host keys
// are accepted as first seen in each run, as OpenSSH's `accept-new` with a throwaway known_hosts would.
import * as net from "node:net";
import { Client } from "ssh2";

export interface SshConnection {
    readonly host: string;
    readonly port?: number;
    readonly user: string;
    /** OpenSSH or PEM private key text, unencrypted. */
    readonly privateKey: string;
}

/** One argument for a POSIX shell, in single quotes. */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface SshRunOptions {
    /** Written to the command's stdin, then closed. */
    stdin?: string | Buffer;
    /** The whole run, connecting included; the command is ended and the run fails after it. */
    timeoutMs?: number;
    /** Exit codes that count as success besides 0. */
    okExitCodes?: number[];
    /** The error message for a failure: the exit code (or "none") and the last line of stderr. */
    describe: (code: number | "none", lastLine: string) => string;
}

const MAX_OUTPUT = 1024 * 1024;

/** ssh2's settings for a connection: the key from memory, host keys accepted as first seen. */
const connectConfig = (connection: SshConnection) => ({
    host: connection.host,
    port: connection.port ?? 22,
    username: connection.user,
    privateKey: connection.privateKey,
    readyTimeout: 15_000,
    hostVerifier: () => true,
});

/** Runs `command` (a shell command line) as the connection's user; resolves with its stdout. */
export function runSsh(connection: SshConnection, command: string, options: SshRunOptions): Promise<string> {
    return new Promise((resolve, reject) => {
        const client = new Client();
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let size = 0;
        let settled = false;
        const finish = (error: Error | undefined, code?: number) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            client.end();
            if (error) return reject(error);
            if (code === 0 || (code !== undefined && options.okExitCodes?.includes(code))) {
                return resolve(Buffer.concat(stdout).toString("utf8"));
            }
            const lastLine = Buffer.concat(stderr).toString("utf8").trim().split("\n").pop() ?? "";
            reject(new Error(options.describe(code ?? "none", lastLine)));
        };
        const fail = (what: string) => finish(new Error(options.describe("none", what)));
        const timer = setTimeout(() => fail(`timed out after ${options.timeoutMs} ms`), options.timeoutMs ?? 600_000);
        const collect = (into: Buffer[]) => (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_OUTPUT) return fail(`more than ${MAX_OUTPUT} bytes of output`);
            into.push(chunk);
        };
        client
            .on("ready", () => {
                client.exec(command, (error, channel) => {
                    if (error) return fail(`could not start the command: ${error.message}`);
                    let exitCode: number | undefined;
                    channel.on("exit", (code: number | null) => (exitCode = code ?? undefined));
                    channel.on("data", collect(stdout));
                    channel.stderr.on("data", collect(stderr));
                    channel.on("close", () => finish(undefined, exitCode));
                    channel.end(options.stdin ?? "");
                });
            })
            .on("error", (error: Error & { level?: string }) =>
                fail(
                    error.level === "client-authentication"
                        ? `${connection.user}@${connection.host}: Permission denied (the SSH key was refused)`
                        : `${connection.host}:${connection.port ?? 22}: ${error.message}`,
                ),
            )
            .connect(connectConfig(connection));
    });
}

/** A local port that reaches `host:port` as seen from the connection's machine (SSH's -L). */
export interface Tunnel {
    /** The local port, on 127.0.0.1. */
    readonly port: number;
    close(): void;
}

/**
 * Opens one SSH connection and forwards every connection to a local port (on loopback) to `host:port` from the
 * remote machine: how the family tool reaches a service inside the cluster from a server.
 */
export function openTunnel(connection: SshConnection, host: string, port: number): Promise<Tunnel> {
    return new Promise((resolve, reject) => {
        const client = new Client();
        const server = net.createServer((local) => {
            client.forwardOut("127.0.0.1", 0, host, port, (error, remote) => {
                if (error) {
                    local.destroy();
                    return;
                }
                local.pipe(remote).pipe(local);
                local.on("error", () => remote.destroy());
                remote.on("error", () => local.destroy());
            });
        });
        const close = () => {
            server.close();
            client.end();
        };
        client
            .on("ready", () =>
                server.listen(0, "127.0.0.1", () =>
                    resolve({ port: (server.address() as net.AddressInfo).port, close }),
                ),
            )
            .on("error", (error) => {
                close();
                reject(new Error(`a tunnel through ${connection.host} to ${host}:${port}: ${error.message}`));
            })
            .connect(connectConfig(connection));
    });
}
