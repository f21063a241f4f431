// `peoples-cloud new <family>`: a family's stack from flags, checked whole by the one schema before anything is
// written; its plain settings in Pulumi.<family>.yaml, its Hetzner token and SSH key as encrypted secrets.
import * as fs from "node:fs";
import * as os from "node:os";
import { secretKeys } from "../stacks/validate";
import { readStackFile, stackFilePath, validate, withSettings, writeStackFile } from "./stack-file";
import { automation, workspaceModule } from "./lazy";
import { checkFamilyName, projectDir, UsageError, type WorkspaceOptions } from "./project";

export interface NewOptions extends WorkspaceOptions {
    readonly hetzner?: boolean;
    readonly location?: string;
    readonly servers?: string;
    readonly agents?: string;
    /** `name=address[,role=agent][,user=…][,port=…]`, one per host. */
    readonly host?: readonly string[];
    readonly domain?: string;
    readonly acmeEmail?: string;
    readonly adminCidr?: readonly string[];
    readonly member?: readonly string[];
    readonly sshKey?: string;
    readonly withoutK3s?: boolean;
}

const HOST_FIELDS = ["role", "user", "port"] as const;

/** One `--host` value as the schema's host object; the schema judges the values. */
export function parseHost(spec: string): Record<string, unknown> {
    const [first, ...rest] = spec.split(",");
    const [name, address] = first.split("=", 2);
    if (!name || !address) {
        throw new UsageError(
            `--host '${spec}' has no address: give --host <name>=<address>[,role=agent][,user=…][,port=…]`,
        );
    }
    const host: Record<string, unknown> = { name, address };
    for (const field of rest) {
        const [key, value] = field.split("=", 2);
        if (!(HOST_FIELDS as readonly string[]).includes(key) || value === undefined) {
            throw new UsageError(
                `--host '${spec}': '${field}' is not one of ${HOST_FIELDS.map((f) => `${f}=…`).join(", ")}`,
            );
        }
        host[key] = key === "port" && /^\d+$/.test(value) ? Number(value) : value;
    }
    return host;
}

const count = (flag: string, value: string | undefined) => {
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value)) throw new UsageError(`${flag} '${value}' is not a number`);
    return Number(value);
};

/** The plain settings the flags describe. */
export function settingsFromFlags(options: NewOptions): Record<string, unknown> {
    if (Boolean(options.hetzner) === Boolean(options.host?.length)) {
        throw new UsageError("give either --hetzner or one --host per machine (--host node-1=192.0.2.11 ...)");
    }
    if (!options.hetzner && (options.location || options.servers || options.agents)) {
        throw new UsageError("--location, --servers and --agents are for --hetzner");
    }
    const servers = count("--servers", options.servers);
    const agents = count("--agents", options.agents);
    const nodes = options.hetzner
        ? {
              provider: "hetzner",
              ...(options.location ? { locations: [options.location] } : {}),
              ...(servers !== undefined ? { servers: { count: servers } } : {}),
              ...(agents !== undefined ? { agents: { count: agents } } : {}),
          }
        : { provider: "bare-metal", hosts: options.host!.map(parseHost) };
    return {
        nodes,
        domain: options.domain,
        acmeEmail: options.acmeEmail,
        adminCidrs: options.adminCidr?.length ? options.adminCidr : undefined,
        members: options.member?.length ? options.member : undefined,
        k3s: options.withoutK3s ? { enabled: false } : undefined,
    };
}

const PRIVATE_KEY = /^-----BEGIN (OPENSSH|RSA|EC) PRIVATE KEY-----\n[\s\S]+\n-----END \1 PRIVATE KEY-----\s*$/;

function readSshKey(file: string): string {
    if (!fs.existsSync(file)) throw new UsageError(`--ssh-key: ${file} does not exist`);
    const key = fs.readFileSync(file, "utf8");
    if (!PRIVATE_KEY.test(key)) throw new UsageError(`--ssh-key: ${file} is not an SSH private key (OpenSSH or PEM)`);
    if (key.includes("ENCRYPTED") || key.includes("bcrypt")) {
        // The engine reaches the hosts unattended; it cannot type a key's passphrase.
        throw new UsageError(`--ssh-key: ${file} is protected by a passphrase; give a key without one`);
    }
    return key;
}

export interface NewResult {
    family: string;
    stackFile: string;
    backend: string;
    next: string;
}

/**
 * Validates everything, then makes the stack. `hcloudToken` asks for the Hetzner token (or reads it from the
 * environment); it is called only once the rest is known to be valid.
 */
export async function newFamily(
    family: string | undefined,
    options: NewOptions,
    hcloudToken: () => Promise<string>,
): Promise<NewResult> {
    const name = checkFamilyName(family);
    const dir = projectDir(options);
    const settings = settingsFromFlags(options);
    const secrets = options.hetzner ? [secretKeys.hcloudToken] : [secretKeys.sshPrivateKey];
    const checked = validate(withSettings({}, settings), secrets);
    if (!checked.ok)
        throw new UsageError(
            `the family's settings are not valid:\n${checked.problems.map((p) => `  - ${p}`).join("\n")}`,
        );

    const sshKeyFile = options.sshKey ?? (options.hetzner ? undefined : `${os.homedir()}/.ssh/id_ed25519`);
    const sshKey = sshKeyFile ? readSshKey(sshKeyFile) : undefined;
    const file = stackFilePath(dir, name);
    if (fs.existsSync(file)) throw new UsageError(`${file} already exists: the family '${name}' is made already`);
    // The engine only now: a command refused above answers without loading it.
    const { Stack } = automation();
    const { hasFamily, openWorkspace } = workspaceModule();
    const workspace = await openWorkspace({ ...options, secrets: false });
    const backend = workspace.envVars.PULUMI_BACKEND_URL;
    if (await hasFamily(workspace, name)) {
        throw new UsageError(`the backend ${backend} has a family '${name}' already`);
    }
    const token = options.hetzner ? await hcloudToken() : undefined;
    if (options.hetzner && !/^[A-Za-z0-9]{64}$/.test(token ?? "")) {
        throw new UsageError("that is not a Hetzner Cloud API token (64 letters and digits)");
    }

    const withSecrets = await openWorkspace(options);
    const stack = await Stack.create(name, withSecrets);
    try {
        // Creating the stack wrote the passphrase's salt into the stack file: keep it, add the settings.
        writeStackFile(dir, name, withSettings(readStackFile(dir, name), settings));
        if (token) await stack.setConfig(secretKeys.hcloudToken, { value: token, secret: true });
        if (sshKey) await stack.setConfig(secretKeys.sshPrivateKey, { value: sshKey, secret: true });
    } catch (err) {
        await withSecrets.removeStack(name, { force: true }).catch(() => undefined);
        fs.rmSync(file, { force: true });
        throw err;
    }
    return { family: name, stackFile: file, backend, next: `peoples-cloud up ${name}` };
}
