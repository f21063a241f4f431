// Everything installed is pinned: Helm charts to an exact version, container images to a tag or a digest.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import * as yaml from "js-yaml";
import { k3sManifestObjects } from "./k3s";
import { podSpecsOf } from "./kubernetes";

const exactVersion = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

interface ChartRef {
    chart: string;
    version?: string;
    /** The chart's values, where the resource carries them (a HelmChart's valuesContent). */
    values?: unknown;
}

/** The charts of any resource that installs Helm charts, however it installs them. */
function chartsOf(type: string, props: Record<string, unknown>): ChartRef[] {
    const inManifest = k3sManifestObjects(type, props).filter((o) => o.kind === "HelmChart");
    const charts = inManifest.map((o) => chartOf("kubernetes:helm.cattle.io/v1:HelmChart", o));
    const chart = chartOf(type, props);
    return [...charts, ...(chart ? [chart] : [])].filter((c): c is ChartRef => c !== undefined);
}

function chartOf(type: string, props: Record<string, unknown>): ChartRef | undefined {
    switch (type) {
        case "kubernetes:helm.sh/v3:Release":
        case "kubernetes:helm.sh/v4:Chart":
            return { chart: String(props.chart), version: props.version as string | undefined, values: props.values };
        case "kubernetes:helm.cattle.io/v1:HelmChart": {
            const spec = (props.spec ?? {}) as { chart?: string; version?: string; valuesContent?: string };
            const values = typeof spec.valuesContent === "string" ? yaml.load(spec.valuesContent) : undefined;
            return { chart: String(spec.chart), version: spec.version, values };
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
        for (const chart of chartsOf(args.type, args.props)) {
            if (!chart.version || !exactVersion.test(chart.version)) {
                reportViolation(
                    `chart '${chart.chart}' is not pinned to an exact version (got '${chart.version ?? ""}')`,
                );
            }
            for (const image of unpinnedImagesIn(chart.values)) {
                reportViolation(
                    `chart '${chart.chart}' leaves image '${image}' unpinned (no tag or digest in its values)`,
                );
            }
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

/** Images in chart values, as charts spell them ({ repository, tag } or { repository, digest }), left unpinned. */
export function unpinnedImagesIn(values: unknown): string[] {
    if (typeof values !== "object" || values === null) return [];
    const node = values as Record<string, unknown>;
    const here: string[] = [];
    if (typeof node.repository === "string") {
        const { tag, digest } = node;
        const pinned =
            (typeof digest === "string" && /^sha256:[0-9a-f]{64}$/.test(digest)) ||
            (typeof tag === "string" && tag !== "" && tag !== "latest");
        if (!pinned) here.push(node.repository);
    }
    return [...here, ...Object.values(node).flatMap(unpinnedImagesIn)];
}

export const imagesPinned: ResourceValidationPolicy = {
    name: "images-pinned",
    description: "Every container image is pinned to a tag that is not 'latest', or to a digest.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        for (const { name, spec } of podSpecsOf(args.type, args.props)) {
            for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
                if (!c.image || !isPinnedImage(c.image)) {
                    const where = name ? `${name}: ` : "";
                    reportViolation(`${where}container '${c.name}' uses an unpinned image '${c.image ?? ""}'`);
                }
            }
        }
    },
};
