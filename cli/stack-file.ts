// A family's Pulumi.<family>.yaml: its plain settings, which the tool writes, and the engine's own entries
// (the passphrase's salt, encrypted secrets as `secure:` values), which it keeps as they are.
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { NAMESPACE, validateConfig, type RawConfig } from "../stacks/validate";
import type { Settings } from "../stacks/schema";
import { UsageError } from "./project";

export interface StackFile {
    /** Everything but `config` (encryptionsalt, secretsprovider, …), kept as the engine wrote it. */
    readonly [engineKey: string]: unknown;
    readonly config?: Readonly<Record<string, unknown>>;
}

export const stackFilePath = (dir: string, family: string) => path.join(dir, `Pulumi.${family}.yaml`);

export function readStackFile(dir: string, family: string): StackFile {
    const file = stackFilePath(dir, family);
    return fs.existsSync(file) ? ((yaml.load(fs.readFileSync(file, "utf8")) as StackFile | null) ?? {}) : {};
}

export const isEncrypted = (value: unknown) => typeof value === "object" && value !== null && "secure" in value;

/**
 * The stack file's config as the engine hands it to the program (every value a string, structured ones as JSON),
 * with `alsoSecret` counted as set secrets: what `validateConfig` reads.
 */
export function rawConfigOf(file: StackFile, alsoSecret: readonly string[] = []): RawConfig {
    const values: Record<string, string> = {};
    const secretKeys = new Set<string>(alsoSecret);
    for (const [key, value] of Object.entries(file.config ?? {})) {
        if (isEncrypted(value)) secretKeys.add(key);
        values[key] = isEncrypted(value) ? "" : typeof value === "string" ? value : JSON.stringify(value);
    }
    for (const key of alsoSecret) values[key] = "";
    return { values, secretKeys };
}

/** The stack file with `changes` made to its plain settings (undefined removes one); secrets untouched. */
export function withSettings(file: StackFile, changes: Readonly<Record<string, unknown>>): StackFile {
    const config: Record<string, unknown> = { ...file.config };
    for (const [name, value] of Object.entries(changes)) {
        if (value === undefined) delete config[`${NAMESPACE}:${name}`];
        else config[`${NAMESPACE}:${name}`] = value;
    }
    return { ...file, config };
}

/** The settings of a stack file, or every problem the one schema finds in it. */
export function validate(
    file: StackFile,
    alsoSecret: readonly string[] = [],
): { ok: true; settings: Settings } | { ok: false; problems: string[] } {
    return validateConfig(rawConfigOf(file, alsoSecret));
}

/** The family's settings from its stack file in `dir`; a stack file the schema refuses refuses the command. */
export function familySettings(dir: string, family: string): Settings {
    const checked = validate(readStackFile(dir, family));
    if (!checked.ok)
        throw new UsageError(`the family's stack file has problems:\n  - ${checked.problems.join("\n  - ")}`);
    return checked.settings;
}

const HEADER =
    "# A family's stack, written by `peoples-cloud` (README: \"A family's cloud\"). Plain settings only: secrets are\n" +
    "# encrypted (`secure:`) with the passphrase. Change devices with `peoples-cloud device`, the rest here.\n";

/** Writes the stack file whole, through a temporary file and a rename: never half written. */
export function writeStackFile(dir: string, family: string, file: StackFile): void {
    const target = stackFilePath(dir, family);
    const temporary = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, HEADER + yaml.dump(file, { lineWidth: 120, noRefs: true }), { mode: 0o644 });
    fs.renameSync(temporary, target);
}
