// The platform's workloads: bounded resources, no root, no privilege escalation, read-only root filesystems.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { type Container, podSpecsOf, type SecurityContext } from "./kubernetes";

function eachContainer(
    type: string,
    props: Record<string, unknown>,
    check: (c: Container, pod: SecurityContext) => string | undefined,
): string[] {
    return podSpecsOf(type, props).flatMap(({ name, spec }) => {
        const pod = spec.securityContext ?? {};
        return [...(spec.initContainers ?? []), ...(spec.containers ?? [])]
            .map((c) => check(c, pod))
            .filter((v): v is string => v !== undefined)
            .map((v) => (name ? `${name}: ${v}` : v));
    });
}

export const workloadsBoundedResources: ResourceValidationPolicy = {
    name: "workloads-bounded-resources",
    description: "Every container requests and limits CPU and memory.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        eachContainer(args.type, args.props, (c) => {
            const missing = (["requests", "limits"] as const).flatMap((kind) =>
                ["cpu", "memory"].filter((r) => !c.resources?.[kind]?.[r]).map((r) => `${kind}.${r}`),
            );
            return missing.length ? `container '${c.name}' has no ${missing.join(", ")}` : undefined;
        }).forEach((v) => reportViolation(v));
    },
};

export const workloadsNonRoot: ResourceValidationPolicy = {
    name: "workloads-non-root",
    description: "Every container runs as non-root and cannot escalate its privileges.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        eachContainer(args.type, args.props, (c, pod) => {
            const nonRoot = c.securityContext?.runAsNonRoot ?? pod.runAsNonRoot;
            if (nonRoot !== true) return `container '${c.name}' does not set runAsNonRoot: true`;
            if (c.securityContext?.allowPrivilegeEscalation !== false) {
                return `container '${c.name}' does not set allowPrivilegeEscalation: false`;
            }
            return undefined;
        }).forEach((v) => reportViolation(v));
    },
};

export const workloadsReadOnlyRoot: ResourceValidationPolicy = {
    name: "workloads-read-only-root",
    description: "Containers use a read-only root filesystem, unless their image needs to write (listed in config).",
    enforcementLevel: "mandatory",
    configSchema: {
        properties: { writableContainers: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: (args, reportViolation) => {
        const { writableContainers = [] } = args.getConfig<{ writableContainers?: string[] }>();
        eachContainer(args.type, args.props, (c) =>
            c.securityContext?.readOnlyRootFilesystem === true || writableContainers.includes(`${args.name}/${c.name}`)
                ? undefined
                : `container '${c.name}' has a writable root filesystem (list '${args.name}/${c.name}' in writableContainers if its image needs one)`,
        ).forEach((v) => reportViolation(v));
    },
};
