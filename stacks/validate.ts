// Validation of a stack's whole configuration, without the Pulumi SDK: the program (stacks/config.ts) and the
// family tool (cli/), which checks a stack file before it writes one, both use it. Every problem is collected
// and reported at once, each with its full config key path.
import type { z } from "zod";
import { settingsSchema, type Settings } from "./schema";

export const NAMESPACE = "peoples-cloud";

/** Secrets the program may take, with when each is required. Values are never echoed back in errors. */
export const secretKeys = {
    hcloudToken: "hcloud:token",
    sshPrivateKey: `${NAMESPACE}:sshPrivateKey`,
    s3AccessKeyId: `${NAMESPACE}:s3AccessKeyId`,
    s3SecretAccessKey: `${NAMESPACE}:s3SecretAccessKey`,
    backupAccessKeyId: `${NAMESPACE}:backupAccessKeyId`,
    backupSecretAccessKey: `${NAMESPACE}:backupSecretAccessKey`,
} as const;

type SecretName = keyof typeof secretKeys;

/** Read from the decoded input, not the parsed settings, so a missing secret is reported with other problems. */
function requiredSecrets(input: Record<string, unknown>): Set<SecretName> {
    const field = (setting: string, name: string) => (input[setting] as Record<string, unknown> | undefined)?.[name];
    const required = new Set<SecretName>();
    if (field("nodes", "provider") === "hetzner") required.add("hcloudToken");
    if (field("nodes", "provider") === "bare-metal") required.add("sshPrivateKey");
    if (field("storage", "backend") === "external") {
        required.add("s3AccessKeyId");
        required.add("s3SecretAccessKey");
    }
    if (field("backup", "target") !== undefined) {
        required.add("backupAccessKeyId");
        required.add("backupSecretAccessKey");
    }
    return required;
}

const secretHints: Record<SecretName, string> = {
    hcloudToken: "pulumi config set --secret hcloud:token <API token> (a pipeline: HCLOUD_TOKEN)",
    sshPrivateKey: `pulumi config set --secret ${NAMESPACE}:sshPrivateKey < ~/.ssh/id_ed25519`,
    s3AccessKeyId: `pulumi config set --secret ${NAMESPACE}:s3AccessKeyId <access key id>`,
    s3SecretAccessKey: `pulumi config set --secret ${NAMESPACE}:s3SecretAccessKey <secret access key>`,
    backupAccessKeyId: `pulumi config set --secret ${NAMESPACE}:backupAccessKeyId <access key id>`,
    backupSecretAccessKey: `pulumi config set --secret ${NAMESPACE}:backupSecretAccessKey <secret access key>`,
};

/** The stack's configuration as the engine hands it to the program: full keys to raw string values. */
export interface RawConfig {
    values: Readonly<Record<string, string>>;
    secretKeys: ReadonlySet<string>;
}

function formatPath(path: readonly PropertyKey[]): string {
    return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
    let v = input;
    for (const key of path) {
        if (v === null || typeof v !== "object") return undefined;
        v = (v as Record<PropertyKey, unknown>)[key];
    }
    return v;
}

function quote(value: unknown): string {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string[] {
    const key = (path: readonly PropertyKey[]) => `${NAMESPACE}:${formatPath(path)}`;
    if (issue.code === "unrecognized_keys") {
        return issue.keys.map((k) => `${key([...issue.path, k])}: unknown setting`);
    }
    const received = valueAt(input, issue.path);
    if (received === undefined) {
        const missing = issue.message.includes("received undefined") ? "is required" : issue.message;
        return [`${key(issue.path)}: ${missing}`];
    }
    return [`${key(issue.path)}: ${issue.message}, got ${quote(received)}`];
}

/** Config values arrive as strings; structured settings are JSON inside them. */
function decode(value: string): unknown {
    const trimmed = value.trim();
    if (!trimmed.startsWith("{") && !trimmed.startsWith("[")) return value;
    try {
        return JSON.parse(trimmed);
    } catch {
        return value;
    }
}

export type Validation = { ok: true; settings: Settings } | { ok: false; problems: string[] };

/** Pure validation of a raw stack configuration; reports every problem found. */
export function validateConfig(raw: RawConfig): Validation {
    const problems: string[] = [];
    const settingKeys = new Set(Object.keys(settingsSchema.shape));
    const secretFullKeys = new Set<string>(Object.values(secretKeys));
    const input: Record<string, unknown> = {};

    for (const [fullKey, value] of Object.entries(raw.values)) {
        const [namespace, name] = fullKey.split(/:(.*)/s, 2);
        if (namespace !== NAMESPACE || secretFullKeys.has(fullKey)) continue;
        if (!settingKeys.has(name)) {
            problems.push(`${fullKey}: unknown setting (known: ${[...settingKeys].join(", ")})`);
            continue;
        }
        if (raw.secretKeys.has(fullKey)) {
            problems.push(`${fullKey}: is a plain setting, not a secret; set it with pulumi config set ${fullKey} ...`);
            continue;
        }
        input[name] = decode(value);
    }

    const parsed = settingsSchema.safeParse(input, { reportInput: false });
    if (!parsed.success) {
        problems.push(...parsed.error.issues.flatMap((issue) => describeIssue(issue, input)));
    }

    const required = requiredSecrets(input);
    for (const [name, fullKey] of Object.entries(secretKeys) as [SecretName, string][]) {
        const present = fullKey in raw.values;
        if (present && !raw.secretKeys.has(fullKey)) {
            problems.push(
                `${fullKey}: is stored in plain text; remove it and set it as a secret: ${secretHints[name]}`,
            );
        } else if (!present && required.has(name)) {
            problems.push(`${fullKey}: is required for this setup; set it with: ${secretHints[name]}`);
        }
    }

    return problems.length === 0 && parsed.success ? { ok: true, settings: parsed.data } : { ok: false, problems };
}
