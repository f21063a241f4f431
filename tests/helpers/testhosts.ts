// Real hosts for tests: network namespaces with sshd and their own /etc/wireguard, /run/wireguard,
// /etc/rancher/k3s and /var/lib/peoples-cloud (scripts/testhosts.sh).
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { repoRoot } from "./stackConfig";

export interface TestHost {
    name: string;
    address: string;
    namespace: string;
    /** The host's folder on this machine: its etc-wireguard, run-wireguard, etc-rancher-k3s and var-lib-peoples-cloud are there. */
    home: string;
}

export interface TestHosts {
    hosts: TestHost[];
    /** The set's folder on this machine (the hosts' folders, the client key), removed by `stop`. */
    dir: string;
    /** The machine's own address on the hosts' bridge: where a host reaches a server the test runs. */
    bridgeAddress: string;
    /** The private key Pulumi (or a test) uses to reach the hosts; a test-only key. */
    clientKeyPath: string;
    /** Lets this public key (an authorized_keys line) in as root on every host of the set, too. */
    authorize(publicKey: string): void;
    /** Runs a shell script on a host over SSH, with optional stdin; resolves with stdout. */
    run(host: TestHost, script: string, stdin?: string): Promise<string>;
    /** Runs a command inside a host's network namespace, without SSH (for checks such as ping). */
    inNamespace(host: TestHost, command: string[]): string;
    stop(): void;
}

const script = path.join(repoRoot, "scripts", "testhosts.sh");

/** The machine's folders that each test host has its own of (its folders are mounted over them). */
export const HOST_OWN_FOLDERS = ["/etc/wireguard", "/run/wireguard", "/etc/rancher/k3s", "/var/lib/peoples-cloud"];

/**
 * What the machine's own copies of those folders hold — each file's name, size, time and a hash of its
 * content (never the content: it may be a key) — so a test can show that the hosts left them alone.
 */
export function machineFolderState(): string[] {
    return HOST_OWN_FOLDERS.flatMap((folder) => {
        if (!fs.existsSync(folder)) return [`${folder}: absent`];
        return fs.readdirSync(folder, { recursive: true, withFileTypes: true }).map((e) => {
            const file = path.join(e.parentPath, e.name);
            const stat = fs.lstatSync(file);
            const hash = stat.isFile() ? createHash("sha256").update(fs.readFileSync(file)).digest("hex") : "";
            return `${file} ${stat.size} ${stat.mtimeMs} ${hash}`;
        });
    });
}

/** Starts `count` hosts on a subnet of their own, so concurrent test runs never meet; `label` names the set. */
export function startTestHosts(label: string, count: number): TestHosts {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `peoples-cloud-hosts-${label}-`));
    const stop = () => execFileSync("bash", [script, "down", dir], { stdio: "inherit" });
    try {
        const hostsFile = execFileSync("bash", [script, "up", label, String(count), dir], { encoding: "utf8" }).trim();
        const { bridge, hosts } = JSON.parse(fs.readFileSync(hostsFile, "utf8")) as {
            bridge: string;
            hosts: TestHost[];
        };
        const clientKeyPath = path.join(dir, "client_key");
        const sshArgs = (host: TestHost) => [
            "-i",
            clientKeyPath,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            `UserKnownHostsFile=${path.join(dir, "known_hosts")}`,
            "-o",
            "LogLevel=ERROR",
            `root@${host.address}`,
        ];
        const run = (host: TestHost, remoteScript: string, stdin?: string) =>
            new Promise<string>((resolve, reject) => {
                const child = execFile("ssh", [...sshArgs(host), remoteScript], (err, stdout, stderr) =>
                    err ? reject(new Error(`${host.name}: ${stderr || err.message}`)) : resolve(stdout),
                );
                child.stdin?.end(stdin ?? "");
            });
        const inNamespace = (host: TestHost, command: string[]) =>
            execFileSync("ip", ["netns", "exec", host.namespace, ...command], { encoding: "utf8" });
        const authorize = (publicKey: string) => fs.appendFileSync(`${clientKeyPath}.pub`, publicKey);
        return { hosts, dir, bridgeAddress: bridge, clientKeyPath, authorize, run, inNamespace, stop };
    } catch (err) {
        stop();
        throw err;
    }
}
