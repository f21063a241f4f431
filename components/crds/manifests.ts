// The cluster foundation as Kubernetes objects, typed: K3s's HelmChart and HelmChartConfig for the charts, and
// cert-manager's issuers. Pure functions of the settings, so the unit tests read exactly what a node receives.
import { certManager, type PinnedChart, type PinnedImage, prometheusOperatorCrds } from "./versions";

export interface ObjectMeta {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
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

export const INGRESS_CLASS = "traefik";

export interface TraefikValues {
    ports: {
        web: { redirections: { entryPoint: { to: "websecure"; scheme: "https"; permanent: boolean } } };
        websecure: { tls: { enabled: boolean } };
    };
    providers: { kubernetesIngress: { publishedService: { enabled: boolean } } };
}

/** K3s's bundled Traefik: HTTPS on websecure, HTTP redirected to it, Ingresses publish the LoadBalancer address. */
export function traefikConfig(): HelmChartConfig {
    const values: TraefikValues = {
        ports: {
            web: { redirections: { entryPoint: { to: "websecure", scheme: "https", permanent: true } } },
            websecure: { tls: { enabled: true } },
        },
        providers: { kubernetesIngress: { publishedService: { enabled: true } } },
    };
    return {
        apiVersion: "helm.cattle.io/v1",
        kind: "HelmChartConfig",
        metadata: { name: "traefik", namespace: "kube-system", labels },
        spec: { valuesContent: JSON.stringify(values) },
    };
}

export interface CertManagerValues {
    crds: { enabled: boolean; keep: boolean };
    image: PinnedImage;
    webhook: { image: PinnedImage };
    cainjector: { image: PinnedImage };
    acmesolver: { image: PinnedImage };
    startupapicheck: { image: PinnedImage };
}

export function certManagerChart(): HelmChart {
    const { images } = certManager;
    const values: CertManagerValues = {
        // Installed and kept by the chart: uninstalling cert-manager must not delete every Certificate.
        crds: { enabled: true, keep: true },
        image: images.controller,
        webhook: { image: images.webhook },
        cainjector: { image: images.cainjector },
        acmesolver: { image: images.acmesolver },
        startupapicheck: { image: images.startupapicheck },
    };
    return helmChart(certManager.chart, values);
}

export function prometheusOperatorCrdsChart(): HelmChart {
    return helmChart(prometheusOperatorCrds.chart, {});
}

/** The CRDs that must be established, and the webhook that must serve, before issuers can be created. */
export const CERT_MANAGER_CRDS = ["certificates.cert-manager.io", "clusterissuers.cert-manager.io"];
export const CERT_MANAGER_WEBHOOK = "cert-manager/cert-manager-webhook";
export const PROMETHEUS_OPERATOR_CRDS = [
    "servicemonitors.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
];

export const ISSUERS = {
    selfSigned: "peoples-cloud-selfsigned",
    internalCa: "peoples-cloud-internal-ca",
    letsencryptStaging: "letsencrypt-staging",
    letsencrypt: "letsencrypt",
} as const;

/** The internal CA's certificate and key, in cert-manager's namespace (where ClusterIssuers read secrets). */
export const INTERNAL_CA_SECRET = { namespace: certManager.chart.namespace, name: ISSUERS.internalCa };

const ACME_SERVERS = {
    letsencryptStaging: "https://acme-staging-v02.api.letsencrypt.org/directory",
    letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
};

export type IssuerRef = { name: string; kind: "ClusterIssuer"; group: "cert-manager.io" };
export const clusterIssuerRef = (name: string): IssuerRef => ({
    name,
    kind: "ClusterIssuer",
    group: "cert-manager.io",
});

export type ClusterIssuer = KubeObject<
    "ClusterIssuer",
    | { selfSigned: Record<string, never> }
    | { ca: { secretName: string } }
    | {
          acme: {
              email: string;
              server: string;
              privateKeySecretRef: { name: string };
              solvers: { http01: { ingress: { ingressClassName: string } } }[];
          };
      }
>;

export type Certificate = KubeObject<
    "Certificate",
    {
        isCA: boolean;
        commonName: string;
        subject: { organizations: string[] };
        secretName: string;
        duration: string;
        renewBefore: string;
        privateKey: { algorithm: "ECDSA"; size: 256; rotationPolicy: "Always" };
        issuerRef: IssuerRef;
    }
>;

export interface IssuerSettings {
    stack: string;
    /** Let's Encrypt issuers are made only with an address for its notices. */
    acmeEmail?: string;
}

/**
 * A self-signed root that signs only the internal CA; the internal CA issuer for in-cluster TLS (Vault, the
 * storage services) and dev; Let's Encrypt staging and production, answering HTTP-01 through Traefik.
 */
export function issuers(settings: IssuerSettings): (ClusterIssuer | Certificate)[] {
    const clusterIssuer = (name: string, spec: ClusterIssuer["spec"]): ClusterIssuer => ({
        apiVersion: "cert-manager.io/v1",
        kind: "ClusterIssuer",
        metadata: { name, labels },
        spec,
    });
    const objects: (ClusterIssuer | Certificate)[] = [
        clusterIssuer(ISSUERS.selfSigned, { selfSigned: {} }),
        {
            apiVersion: "cert-manager.io/v1",
            kind: "Certificate",
            metadata: { name: ISSUERS.internalCa, namespace: INTERNAL_CA_SECRET.namespace, labels },
            spec: {
                isCA: true,
                commonName: `peoples-cloud ${settings.stack} internal CA`,
                subject: { organizations: ["peoples-cloud"] },
                secretName: INTERNAL_CA_SECRET.name,
                duration: "87600h",
                renewBefore: "720h",
                privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
                issuerRef: clusterIssuerRef(ISSUERS.selfSigned),
            },
        },
        clusterIssuer(ISSUERS.internalCa, { ca: { secretName: INTERNAL_CA_SECRET.name } }),
    ];
    if (settings.acmeEmail) {
        for (const which of ["letsencryptStaging", "letsencrypt"] as const) {
            objects.push(
                clusterIssuer(ISSUERS[which], {
                    acme: {
                        email: settings.acmeEmail,
                        server: ACME_SERVERS[which],
                        privateKeySecretRef: { name: `${ISSUERS[which]}-account-key` },
                        solvers: [{ http01: { ingress: { ingressClassName: INGRESS_CLASS } } }],
                    },
                }),
            );
        }
    }
    return objects;
}
