// No secret material in places the engine and the cluster keep in plain text.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { remoteScriptType } from "./k3s";
import { podSpecsOf } from "./kubernetes";

/** Shapes of secret material: private keys, cloud and Vault tokens, credentials in URLs. */
const secretShapes: { what: string; pattern: RegExp }[] = [
    { what: "a private key", pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----/ },
    { what: "a Vault token", pattern: /\b(hvs|hvb|hvr|s)\.[A-Za-z0-9_-]{20,}\b/ },
    { what: "an AWS-style secret access key", pattern: /\baws_secret_access_key\s*[=:]\s*\S{20,}/i },
    { what: "credentials in a URL", pattern: /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i },
    { what: "a Hetzner API token", pattern: /\bhcloud[_-]?token\s*[=:]\s*[A-Za-z0-9]{64}\b/i },
];

function findSecret(value: unknown): string | undefined {
    const text = typeof value === "string" ? value : JSON.stringify(value ?? "");
    return secretShapes.find((s) => s.pattern.test(text))?.what;
}

/** The plain-text fields of a resource that must never hold secret material, by resource type. */
function plainFields(type: string, props: Record<string, unknown>): [string, unknown][] {
    if (type === "kubernetes:core/v1:ConfigMap") {
        return Object.entries((props.data as Record<string, string> | undefined) ?? {}).map(([k, v]) => [
            `data.${k}`,
            v,
        ]);
    }
    if (type === "command:remote:Command" || type === "command:local:Command") {
        const env = Object.entries((props.environment as Record<string, string> | undefined) ?? {});
        const scripts = ["create", "update", "delete"].map((k): [string, unknown] => [k, props[k]]);
        return [...env.map(([k, v]): [string, unknown] => [`environment.${k}`, v]), ...scripts];
    }
    if (type === remoteScriptType) {
        // Its stdin may carry a secret: the resource marks it secret in the state.
        const env = Object.entries((props.env as Record<string, string> | undefined) ?? {});
        const scripts = ["script", "deleteScript"].map((k): [string, unknown] => [k, props[k]]);
        return [...env.map(([k, v]): [string, unknown] => [`env.${k}`, v]), ...scripts, ...containerEnv(type, props)];
    }
    return containerEnv(type, props);
}

/** Every container's env values, of a workload resource or of the workloads in a K3s manifest. */
function containerEnv(type: string, props: Record<string, unknown>): [string, unknown][] {
    return podSpecsOf(type, props).flatMap(({ name, spec }) =>
        [...(spec.initContainers ?? []), ...(spec.containers ?? [])].flatMap((c) => {
            const env = (c as { env?: { name: string; value?: string }[] }).env ?? [];
            const where = name ? `${name} ` : "";
            return env.map((e): [string, unknown] => [`${where}container ${c.name} env ${e.name}`, e.value]);
        }),
    );
}

export const noPlaintextSecrets: ResourceValidationPolicy = {
    name: "no-plaintext-secrets",
    description:
        "ConfigMaps, container environments and remote command environments and scripts carry no secret material; " +
        "secrets go in as Kubernetes Secrets, secretKeyRef or a command's stdin.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        for (const [field, value] of plainFields(args.type, args.props)) {
            const what = findSecret(value);
            if (what) reportViolation(`${field} holds ${what} in plain text`);
        }
    },
};
