// Finds the pod template of every Kubernetes workload kind, so workload rules are written once.

export interface Container {
    name: string;
    image?: string;
    resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
    securityContext?: SecurityContext;
}

export interface SecurityContext {
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
}

export interface PodSpec {
    containers?: Container[];
    initContainers?: Container[];
    securityContext?: SecurityContext;
}

const templated = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"];

/** The pod spec of a Pod, a templated workload or a CronJob; undefined for anything else. */
export function podSpecOf(type: string, props: Record<string, unknown>): PodSpec | undefined {
    const [pkg, , kind] = type.split(":");
    if (pkg !== "kubernetes") return undefined;
    const spec = props.spec as Record<string, unknown> | undefined;
    if (kind === "Pod") return spec;
    if (templated.includes(kind)) return (spec?.template as { spec?: PodSpec } | undefined)?.spec;
    if (kind === "CronJob") {
        const job = (spec?.jobTemplate as { spec?: Record<string, unknown> } | undefined)?.spec;
        return (job?.template as { spec?: PodSpec } | undefined)?.spec;
    }
    return undefined;
}
