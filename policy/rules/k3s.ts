// K3s: Kubernetes Secrets are encrypted at rest on every server.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import * as yaml from "js-yaml";

/** The type of components/infra/remote.ts's RemoteScript, the program's remote commands. */
export const remoteScriptType = "pulumi-nodejs:dynamic/infra:RemoteScript";

/**
 * The objects of a K3s auto-deploy manifest that a RemoteScript writes (components/foundation/layer.ts); none for
 * any other resource. Other scripts' stdin may be unknown during preview: only the manifests' is read.
 */
export function k3sManifestObjects(type: string, props: Record<string, unknown>): Record<string, unknown>[] {
    if (type !== remoteScriptType) return [];
    const env = (props.env as Record<string, unknown> | undefined) ?? {};
    if (typeof env.K3S_MANIFEST !== "string" || typeof props.stdin !== "string") return [];
    return yaml.loadAll(props.stdin).filter((doc): doc is Record<string, unknown> => {
        return typeof doc === "object" && doc !== null;
    });
}

/** A remote command that installs or configures a K3s server (the installer's "server" mode or its config). */
function installsK3sServer(script: string): boolean {
    return /\bk3s\s+server\b|INSTALL_K3S_EXEC=["']?server\b|\/etc\/rancher\/k3s\/config\.yaml/.test(script);
}

export const k3sSecretsEncryption: ResourceValidationPolicy = {
    name: "k3s-secrets-encryption",
    description: "Every K3s server is started with secrets encryption at rest.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        if (args.type === remoteScriptType) {
            // components/infra/k3s.ts: the role is in the script's environment, the config on its stdin.
            // Other scripts' stdin may be unknown during preview, and reading an unknown value fails the rule.
            const env = (args.props.env as Record<string, unknown> | undefined) ?? {};
            if (env.K3S_ROLE !== "server") return;
            const config: unknown = args.props.stdin;
            if (typeof config !== "string" || !/^secrets-encryption: true$/m.test(config)) {
                reportViolation("installs a K3s server without secrets-encryption: true in its config");
            }
            return;
        }
        if (args.type !== "command:remote:Command") return;
        const script = [args.props.create, args.props.stdin].filter((s) => typeof s === "string").join("\n");
        if (installsK3sServer(script) && !/--secrets-encryption\b|secrets-encryption:\s*true/.test(script)) {
            reportViolation("installs a K3s server without --secrets-encryption");
        }
    },
};
