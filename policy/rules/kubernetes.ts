// Finds the pod template of every Kubernetes workload kind, so workload rules are written once: a workload as a
// Kubernetes resource, or as an object of a K3s auto-deploy manifest (the layers' RemoteScripts).
import { k3sManifestObjects } from "./k3s";

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

/** The pod specs of a workload resource, or of each workload in a K3s manifest, named for messages. */
export function podSpecsOf(type: string, props: Record<string, unknown>): { name?: string; spec: PodSpec }[] {
    const own = podSpecOf(type, props);
    const inManifest = k3sManifestObjects(type, props).flatMap((o) => {
        const kind = String(o.kind);
        const apiVersion = String(o.apiVersion);
        const group = apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`;
        const spec = podSpecOf(`kubernetes:${group}:${kind}`, o);
        const name = (o.metadata as { name?: string } | undefined)?.name;
        return spec ? [{ name: `${kind}/${name ?? ""}`, spec }] : [];
    });
    return [...(own ? [{ spec: own }] : []), ...inManifest];
}
