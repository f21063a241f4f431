// Reads a Pulumi.<stack>.yaml the way the engine hands its config to the program: every value a string,
// structured values as JSON.
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import type { RawConfig } from "../../stacks/config";

export const repoRoot = path.resolve(__dirname, "..", "..");

export function stackFileValues(stack: string): Record<string, string> {
    const file = path.join(repoRoot, `Pulumi.${stack}.yaml`);
    const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    return Object.fromEntries(
        Object.entries(doc.config ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
}

/** A raw config from plain values plus secret values (marked secret as `pulumi config set --secret` does). */
export function rawConfig(plain: Record<string, unknown>, secrets: Record<string, string> = {}): RawConfig {
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(plain)) values[k] = typeof v === "string" ? v : JSON.stringify(v);
    Object.assign(values, secrets);
    return { values, secretKeys: new Set(Object.keys(secrets)) };
}
