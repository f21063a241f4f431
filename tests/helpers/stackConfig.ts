// Reads a Pulumi.<stack>.yaml the way the engine hands its config to the program: every value a string,
// structured values as JSON.
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import type { RawConfig } from "../../stacks/config";

export const repoRoot = path.resolve(__dirname, "..", "..");

type StackFile = { config?: Record<string, unknown> };

export function readStackFile(stack: string): StackFile {
    return yaml.load(fs.readFileSync(path.join(repoRoot, `Pulumi.${stack}.yaml`), "utf8")) as StackFile;
}

export function isEncrypted(value: unknown): boolean {
    return typeof value === "object" && value !== null && "secure" in value;
}

/** The plain settings of a stack file; secrets a user set there (encrypted, `secure:`) are left out. */
export function stackFileValues(stack: string): Record<string, string> {
    return Object.fromEntries(
        Object.entries(readStackFile(stack).config ?? {})
            .filter(([, v]) => !isEncrypted(v))
            .map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
}

/** A raw config from plain values plus secret values (marked secret as `pulumi config set --secret` does). */
export function rawConfig(plain: Record<string, unknown>, secrets: Record<string, string> = {}): RawConfig {
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(plain)) values[k] = typeof v === "string" ? v : JSON.stringify(v);
    Object.assign(values, secrets);
    return { values, secretKeys: new Set(Object.keys(secrets)) };
}

/** A bare-metal `nodes` setting of `count` hosts (node-1, …, on 192.0.2.11, …): three servers from three hosts, else one. */
export function bareMetalNodes(count: number) {
    const servers = count >= 3 ? 3 : 1;
    return {
        provider: "bare-metal",
        hosts: Array.from({ length: count }, (_, i) => ({
            name: `node-${i + 1}`,
            address: `192.0.2.${i + 11}`,
            role: i < servers ? "server" : "agent",
        })),
    };
}
