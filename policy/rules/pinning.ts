// Everything installed is pinned: Helm charts to an exact version, container images to a tag or a digest.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { podSpecOf } from "./kubernetes";

const exactVersion = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** The chart and version of any resource that installs a Helm chart, however it installs it. */
function chartOf(type: string, props: Record<string, unknown>): { chart: string; version?: string } | undefined {
    switch (type) {
        case "kubernetes:helm.sh/v3:Release":
        case "kubernetes:helm.sh/v4:Chart":
            return { chart: String(props.chart), version: props.version as string | undefined };
        case "kubernetes:helm.cattle.io/v1:HelmChart": {
            const spec = (props.spec ?? {}) as { chart?: string; version?: string };
            return { chart: String(spec.chart), version: spec.version };
        }
        default:
            return undefined;
    }
}

export const helmChartsPinned: ResourceValidationPolicy = {
    name: "helm-charts-pinned",
    description: "Every Helm chart, whatever resource installs it, is pinned to an exact version.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        const chart = chartOf(args.type, args.props);
        if (!chart) return;
        if (!chart.version || !exactVersion.test(chart.version)) {
            reportViolation(`chart '${chart.chart}' is not pinned to an exact version (got '${chart.version ?? ""}')`);
        }
    },
};

/** Whether an image reference names a digest, or a tag other than latest. */
export function isPinnedImage(image: string): boolean {
    if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
    const lastSegment = image.slice(image.lastIndexOf("/") + 1);
    const colon = lastSegment.lastIndexOf(":");
    return colon > 0 && lastSegment.slice(colon + 1) !== "latest";
}

export const imagesPinned: ResourceValidationPolicy = {
    name: "images-pinned",
    description: "Every container image is pinned to a tag that is not 'latest', or to a digest.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        const spec = podSpecOf(args.type, args.props);
        for (const c of [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]) {
            if (!c.image || !isPinnedImage(c.image)) {
                reportViolation(`container '${c.name}' uses an unpinned image '${c.image ?? ""}'`);
            }
        }
    },
};
