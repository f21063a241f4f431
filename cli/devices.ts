// A family's phones and laptops in the mesh. Each device makes its own WireGuard key; only its public half is
// ever given to the platform (`device add`), and nothing this module prints or writes off the device holds a
// private key: `device config` leaves it out, `device join` keeps it in a 0600 file on the device.
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderWireGuardConfig } from "../components/infra/wireguard";
import { meshAddressOf } from "../lib/mesh-addresses";
import { readStackFile, stackFilePath, validate, withSettings, writeStackFile } from "./stack-file";
import { workspaceModule } from "./lazy";
import { projectDir, UsageError, type WorkspaceOptions } from "./project";

export interface Device {
    name: string;
    owner: string;
    publicKey: string;
}

function familyFile(options: WorkspaceOptions, family: string) {
    const dir = projectDir(options);
    if (!fs.existsSync(stackFilePath(dir, family))) {
        throw new UsageError(`there is no family '${family}' here (${stackFilePath(dir, family)} is missing)`);
    }
    const file = readStackFile(dir, family);
    const devices = (file.config?.["peoples-cloud:devices"] ?? []) as Device[];
    return { dir, file, devices };
}

/** Writes the family's devices after the one schema accepted the whole stack with them. */
function saveDevices(dir: string, family: string, file: ReturnType<typeof readStackFile>, devices: Device[]) {
    const next = withSettings(file, { devices: devices.length ? devices : undefined });
    const checked = validate(next);
    if (!checked.ok) throw new UsageError(checked.problems.join("\n"));
    writeStackFile(dir, family, next);
    return checked.settings;
}

export function addDevice(family: string, device: Device, options: WorkspaceOptions): { meshAddress: string } {
    const { dir, file, devices } = familyFile(options, family);
    if (devices.some((d) => d.name === device.name)) {
        throw new UsageError(`the family '${family}' has a device '${device.name}' already`);
    }
    const settings = saveDevices(dir, family, file, [...devices, device]);
    return { meshAddress: meshAddressOf(device.name, settings.mesh.cidr) };
}

export function removeDevice(family: string, name: string, options: WorkspaceOptions): void {
    const { dir, file, devices } = familyFile(options, family);
    if (!devices.some((d) => d.name === name)) {
        const known = devices.map((d) => d.name).join(", ") || "none";
        throw new UsageError(`the family '${family}' has no device '${name}' (its devices: ${known})`);
    }
    saveDevices(
        dir,
        family,
        file,
        devices.filter((d) => d.name !== name),
    );
}

/** What a device needs to reach the nodes, from the stack's outputs: everything but its private key. */
export interface DeviceConfig {
    device: Device & { meshAddress: string };
    /** wg-quick text whose private key is read from `keyFile` on the device. */
    wgQuick: string;
    keyFile: string;
    peers: { node: string; publicKey: string; endpoint: string; allowedIps: string }[];
    address: string;
}

/** The stack outputs a device's config comes from (program.ts, PlatformOutputs), as the engine stores them. */
interface Outputs {
    nodes: { name: string; meshAddress: string; publicAddress: string }[];
    meshCidr: string;
    meshPort: number;
    meshPublicKeys: Record<string, string>;
    devices?: (Device & { meshAddress: string })[];
}

export async function readOutputs(family: string, options: WorkspaceOptions): Promise<Outputs | undefined> {
    const { selectFamily } = workspaceModule();
    const stack = await selectFamily(options, family);
    const outputs = await stack.outputs();
    if (!outputs.nodes || !outputs.meshPublicKeys) return undefined;
    return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value])) as Outputs;
}

export function deviceConfigFrom(outputs: Outputs, name: string, keyFile: string): DeviceConfig | undefined {
    const device = outputs.devices?.find((d) => d.name === name);
    if (!device) return undefined;
    const prefix = outputs.meshCidr.split("/")[1];
    const peers = outputs.nodes.map((n) => ({
        node: n.name,
        publicKey: outputs.meshPublicKeys[n.name],
        endpoint: `${n.publicAddress}:${outputs.meshPort}`,
        allowedIps: `${n.meshAddress}/32`,
    }));
    const address = `${device.meshAddress}/${prefix}`;
    const wgQuick = renderWireGuardConfig({
        address,
        privateKeyFile: keyFile,
        peers: peers.map((p) => ({
            name: p.node,
            publicKey: p.publicKey,
            endpoint: p.endpoint,
            allowedIps: [p.allowedIps],
        })),
    });
    return { device, wgQuick, keyFile, peers, address };
}

export async function deviceConfig(
    family: string,
    name: string,
    keyFile: string,
    options: WorkspaceOptions,
): Promise<DeviceConfig> {
    const { devices } = familyFile(options, family);
    const outputs = await readOutputs(family, options);
    const config = outputs && deviceConfigFrom(outputs, name, keyFile);
    if (config) return config;
    if (devices.some((d) => d.name === name)) {
        throw new UsageError(`the device '${name}' is added but not in the mesh yet: run peoples-cloud up ${family}`);
    }
    throw new UsageError(`the family '${family}' has no device '${name}'; add it with peoples-cloud device add`);
}

/** Step by step for the WireGuard apps, which make the key themselves and refuse a config without one. */
export function phoneSteps(family: string, config: DeviceConfig): string {
    const lines = [
        `In the WireGuard app on ${config.device.name}:`,
        `  1. If the tunnel is not made yet: + → "Create from scratch", name it ${family}, tap "Generate" beside`,
        `     the private key, and share only the public key (${config.device.publicKey} is the one added).`,
        `  2. Interface → Addresses: ${config.address}. Leave the listen port empty.`,
    ];
    config.peers.forEach((p, i) =>
        lines.push(
            `  ${3 + i}. Add peer (${p.node}): public key ${p.publicKey}`,
            `     endpoint ${p.endpoint}, allowed IPs ${p.allowedIps}, persistent keepalive 25`,
        ),
    );
    lines.push(`  ${3 + config.peers.length}. Save and switch the tunnel on.`);
    return lines.join("\n");
}

const b64 = (b64urlText: string) => Buffer.from(b64urlText, "base64url").toString("base64");
/** PKCS #8's fixed prefix of an X25519 private key (RFC 8410), before its 32 raw bytes. */
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

/** A WireGuard public key from a private key, both base64 (Curve25519, as `wg pubkey`). */
export function publicKeyOf(privateKey: string): string {
    const raw = Buffer.from(privateKey, "base64");
    const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: "der", type: "pkcs8" });
    return b64(createPublicKey(key).export({ format: "jwk" }).x!);
}

/**
 * The device's key file: made here (0600, refusing to overwrite) when it is not there yet. Returns only the
 * public key; the private key is written to the file and forgotten.
 */
export function ensureDeviceKey(keyFile: string): { publicKey: string; made: boolean } {
    if (fs.existsSync(keyFile)) {
        const privateKey = fs.readFileSync(keyFile, "utf8").trim();
        if (!/^[A-Za-z0-9+/]{43}=$/.test(privateKey)) {
            throw new UsageError(`${keyFile} exists and is not a WireGuard private key; move it away first`);
        }
        return { publicKey: publicKeyOf(privateKey), made: false };
    }
    fs.mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync("x25519");
    const d = b64(privateKey.export({ format: "jwk" }).d!);
    // "wx": fails if the file appeared meanwhile; mode 0600 from the first byte.
    fs.writeFileSync(keyFile, `${d}\n`, { flag: "wx", mode: 0o600 });
    return { publicKey: publicKeyOf(d), made: true };
}

export interface JoinOptions extends WorkspaceOptions {
    readonly configDir: string;
    readonly interfaceName: string;
    readonly keyFile: string;
    /** How long to wait for the platform to list the device; 0: do not wait. */
    readonly waitSeconds: number;
    readonly pollSeconds?: number;
}

export type JoinResult =
    | { state: "waiting"; publicKey: string; keyFile: string }
    | { state: "up"; publicKey: string; keyFile: string; configFile: string; meshAddress: string };

/** `device join`: the key made here, then, once the platform lists this device with it, the tunnel up. */
export async function joinDevice(
    family: string,
    name: string,
    options: JoinOptions,
    say: (line: string) => void,
): Promise<JoinResult> {
    familyFile(options, family);
    const { publicKey, made } = ensureDeviceKey(options.keyFile);
    say(
        made
            ? `Made this device's WireGuard key in ${options.keyFile} (0600); it never leaves this device.`
            : `Using this device's key in ${options.keyFile}.`,
    );
    say(`Its public key: ${publicKey}`);
    const deadline = Date.now() + options.waitSeconds * 1000;
    let told = false;
    for (;;) {
        const outputs = await readOutputs(family, options);
        const config = outputs && deviceConfigFrom(outputs, name, options.keyFile);
        if (config && config.device.publicKey !== publicKey) {
            throw new UsageError(
                `the platform lists '${name}' with another public key (${config.device.publicKey}); ` +
                    `remove it (peoples-cloud device remove ${name} --family ${family}) and add this one`,
            );
        }
        if (config) {
            const configFile = path.join(options.configDir, `${options.interfaceName}.conf`);
            fs.writeFileSync(configFile, config.wgQuick, { mode: 0o600 });
            execFileSync("bash", [path.join(__dirname, "scripts", "device-up.sh"), configFile], {
                stdio: ["ignore", "ignore", "inherit"],
            });
            say(`Tunnel ${options.interfaceName} is up: this device is ${config.device.meshAddress} in the mesh.`);
            return {
                state: "up",
                publicKey,
                keyFile: options.keyFile,
                configFile,
                meshAddress: config.device.meshAddress,
            };
        }
        if (!told) {
            say(
                `Waiting for the platform to list '${name}'. Whoever runs the family's stack runs:\n` +
                    `  peoples-cloud device add ${name} --family ${family} --owner <member> --public-key ${publicKey}\n` +
                    `  peoples-cloud up ${family}`,
            );
            told = true;
        }
        if (Date.now() >= deadline) return { state: "waiting", publicKey, keyFile: options.keyFile };
        await new Promise((r) => setTimeout(r, (options.pollSeconds ?? 10) * 1000));
    }
}
