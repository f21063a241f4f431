// The Kubernetes object vocabulary every layer writes in: typed objects, K3s's HelmChart and HelmChartConfig,
// and pinned charts and images. The seam where @pulumi/kubernetes's typed resources would replace it.

export interface PinnedChart {
    repo: string;
    chart: string;
    version: string;
    namespace: string;
}

export interface PinnedImage {
    repository: string;
    tag: string;
}

export interface ObjectMeta {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
}

export interface KubeObject<Kind extends string = string, Spec = unknown> {
    apiVersion: string;
    kind: Kind;
    metadata: ObjectMeta;
    spec: Spec;
}

/** K3s's helm-controller installs it: a Job in the cluster fetches the chart, so nothing fetches it at preview. */
export type HelmChart = KubeObject<
    "HelmChart",
    {
        repo: string;
        chart: string;
        version: string;
        targetNamespace: string;
        createNamespace: boolean;
        valuesContent: string;
    }
>;

/** Values for a chart K3s itself installs (Traefik), merged over K3s's own. */
export type HelmChartConfig = KubeObject<"HelmChartConfig", { valuesContent: string }>;

export const labels = { "app.kubernetes.io/managed-by": "peoples-cloud" };

// JSON is YAML: the values reach Helm exactly as typed here.
export function helmChart<Values>(pinned: PinnedChart, values: Values): HelmChart {
    return {
        apiVersion: "helm.cattle.io/v1",
        kind: "HelmChart",
        // HelmCharts live in kube-system, where K3s's helm-controller runs their install jobs.
        metadata: { name: pinned.chart, namespace: "kube-system", labels },
        spec: {
            repo: pinned.repo,
            chart: pinned.chart,
            version: pinned.version,
            targetNamespace: pinned.namespace,
            createNamespace: true,
            valuesContent: JSON.stringify(values),
        },
    };
}

/** cert-manager's reference to a ClusterIssuer, as Certificates and Ingress annotations name it. */
export type IssuerRef = { name: string; kind: "ClusterIssuer"; group: "cert-manager.io" };
export const clusterIssuerRef = (name: string): IssuerRef => ({
    name,
    kind: "ClusterIssuer",
    group: "cert-manager.io",
});

/** The ClusterIssuers the apps' ingress certificates may come from, by the names the stack config uses. */
export const TLS_ISSUERS = ["letsencrypt", "letsencrypt-staging", "internal-ca"] as const;
export type TlsIssuer = (typeof TLS_ISSUERS)[number];
