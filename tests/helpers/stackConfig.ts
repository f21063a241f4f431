// Reads a Pulumi.<stack>.yaml the way the engine hands its config to the program: every value a string,
// structured values as JSON.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    isEncrypted,
    readStackFile as readProjectStackFile,
    stackFilePath,
    type StackFile,
} from "../../cli/stack-file";
import type { RawConfig } from "../../stacks/config";

export const repoRoot = path.resolve(__dirname, "..", "..");

export { isEncrypted };

/** This clone's Pulumi.<stack>.yaml, which must exist. */
export function readStackFile(stack: string): StackFile {
    assert.ok(fs.existsSync(stackFilePath(repoRoot, stack)), `Pulumi.${stack}.yaml is missing`);
    return readProjectStackFile(repoRoot, stack);
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
