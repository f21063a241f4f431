// The cluster foundation as Kubernetes objects, typed: K3s's HelmChart and HelmChartConfig for the charts, and
// cert-manager's issuers. Pure functions of the settings, so the unit tests read exactly what a node receives.
import {
    clusterIssuerRef,
    helmChart,
    type HelmChart,
    type HelmChartConfig,
    type IssuerRef,
    type KubeObject,
    labels,
    type PinnedImage,
} from "../../lib/kube";
import { certManager, prometheusOperatorCrds } from "./versions";

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
    /** The stack's name, in the internal CA's subject. */
    readonly stack: string;
    /** Let's Encrypt issuers are made only with an address for its notices. */
    readonly acmeEmail?: string;
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
