// Loads the running stack's configuration for the program, through the Pulumi SDK, and validates it whole
// (validate.ts) before any resource is registered.
import * as pulumi from "@pulumi/pulumi";
import type { Settings } from "./schema";
import { secretKeys, validateConfig, type RawConfig } from "./validate";

export { NAMESPACE, secretKeys, validateConfig, type RawConfig, type Validation } from "./validate";

export interface PlatformSecrets {
    hcloudToken?: pulumi.Output<string>;
    sshPrivateKey?: pulumi.Output<string>;
    s3Credentials?: { accessKeyId: pulumi.Output<string>; secretAccessKey: pulumi.Output<string> };
    /** The backup target's credentials, with `backup.target`. */
    backupCredentials?: { accessKeyId: pulumi.Output<string>; secretAccessKey: pulumi.Output<string> };
}

export interface PlatformConfig {
    project: string;
    stack: string;
    settings: Settings;
    secrets: PlatformSecrets;
}

export class ConfigError extends pulumi.RunError {
    constructor(public readonly problems: string[]) {
        super(
            `Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

// The SDK marks this helper @internal, yet it is the only way to learn which keys the engine decrypted;
// Config.get uses it to warn about secrets read as plain values.
const sdkRuntime = pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean };

/**
 * The raw configuration of the running stack, as the engine passed it, with the Hetzner token taken from
 * HCLOUD_TOKEN when the stack holds none (as the hcloud provider does): how a pipeline gives it from its secrets.
 */
export function readRawConfig(env: NodeJS.ProcessEnv = process.env): RawConfig {
    const isSecret = sdkRuntime.isConfigSecret;
    if (!isSecret) throw new Error("@pulumi/pulumi no longer exports runtime.isConfigSecret; update stacks/config.ts");
    const values = { ...pulumi.runtime.allConfig() };
    const secret = new Set(Object.keys(values).filter((k) => isSecret(k)));
    if (!(secretKeys.hcloudToken in values) && env.HCLOUD_TOKEN) {
        values[secretKeys.hcloudToken] = env.HCLOUD_TOKEN;
        secret.add(secretKeys.hcloudToken);
    }
    return { values, secretKeys: secret };
}

/** Loads the stack configuration or throws one ConfigError that lists every problem. */
export function loadConfig(raw: RawConfig = readRawConfig()): PlatformConfig {
    const result = validateConfig(raw);
    if (!result.ok) throw new ConfigError(result.problems);

    const secret = (fullKey: string): pulumi.Output<string> | undefined => {
        const [namespace, name] = fullKey.split(":");
        return new pulumi.Config(namespace).getSecret(name);
    };
    const fromEnvironment = (fullKey: string) =>
        raw.secretKeys.has(fullKey) && raw.values[fullKey] ? pulumi.secret(raw.values[fullKey]) : undefined;
    const accessKeyId = secret(secretKeys.s3AccessKeyId);
    const secretAccessKey = secret(secretKeys.s3SecretAccessKey);
    const backupKeyId = secret(secretKeys.backupAccessKeyId);
    const backupSecret = secret(secretKeys.backupSecretAccessKey);
    return {
        project: pulumi.getProject(),
        stack: pulumi.getStack(),
        settings: result.settings,
        secrets: {
            hcloudToken: secret(secretKeys.hcloudToken) ?? fromEnvironment(secretKeys.hcloudToken),
            sshPrivateKey: secret(secretKeys.sshPrivateKey),
            s3Credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
            backupCredentials:
                backupKeyId && backupSecret ? { accessKeyId: backupKeyId, secretAccessKey: backupSecret } : undefined,
        },
    };
}
