// The apps layer as Kubernetes objects, pure functions of its settings, so the unit tests read exactly what a
// node receives: the namespace, each service's Deployment, Service, PodDisruptionBudget, network policies, the
// ServiceMonitor and the Ingresses (the Vault Secrets Operator's syncs are lib/workloads.ts's, shared).
import { type KubeObject, labels } from "../../lib/kube";
import {
    appLabel,
    anywhere,
    denyIngress,
    dnsEgress,
    here,
    inNamespace,
    meta as metaIn,
    networkPolicy as networkPolicyIn,
    type Peer,
    type StoragePeer,
    tcp,
    vaultEgress,
} from "../../lib/workloads";
import { HTTP_PORT, NAMESPACE, OPS_PORT, type PodSpec, type Service } from "./pods";
import { SEAWEEDFS_NAME, SEAWEEDFS_S3_PORT } from "./seaweedfs";

const meta = (name: string, extra: Record<string, string> = {}) => metaIn(NAMESPACE, name, extra);

/** The namespace and the services' accounts (storage-s3-api's logs in to Vault; both are VSO's identity). */
export function namespaceObjects(): KubeObject[] {
    const account = (name: Service): KubeObject => ({
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: meta(name),
        spec: undefined,
    });
    return [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE, labels }, spec: undefined },
        account("storage-s3-api"),
        account("storage-kv-api"),
    ];
}

/** Two replicas on different nodes from two nodes; one below. */
export const serviceReplicas = (nodeCount: number): 1 | 2 => (nodeCount >= 2 ? 2 : 1);

export interface ServiceWorkload {
    readonly service: Service;
    readonly pod: PodSpec;
    readonly replicas: number;
    /** Named ports the Service exposes. */
    readonly ports: { name: string; port: number }[];
}

export function workloadObjects(w: ServiceWorkload): KubeObject[] {
    const selector = appLabel(w.service);
    return [
        {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: meta(w.service, selector),
            spec: {
                replicas: w.replicas,
                selector: { matchLabels: selector },
                strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
                template: {
                    metadata: { labels: { ...labels, ...selector } },
                    spec: {
                        ...w.pod,
                        ...(w.replicas > 1
                            ? {
                                  topologySpreadConstraints: [
                                      {
                                          maxSkew: 1,
                                          topologyKey: "kubernetes.io/hostname",
                                          whenUnsatisfiable: "DoNotSchedule",
                                          labelSelector: { matchLabels: selector },
                                      },
                                  ],
                              }
                            : {}),
                    },
                },
            },
        },
        {
            apiVersion: "v1",
            kind: "Service",
            metadata: meta(w.service, selector),
            spec: { selector, ports: w.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.name })) },
        },
        {
            apiVersion: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: meta(w.service, selector),
            // One at a time: with two replicas one keeps serving; with one, a drain can still evict it.
            spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
        },
    ];
}

/**
 * Prometheus scrapes each service's /metrics: storage-s3-api's on its ops port, storage-kv-api's on its HTTP
 * port, which the Ingress does not route (it routes only the API's /v1). The CRD comes with the foundation.
 */
export function serviceMonitor(service: Service): KubeObject {
    return {
        apiVersion: "monitoring.coreos.com/v1",
        kind: "ServiceMonitor",
        metadata: meta(service, appLabel(service)),
        spec: {
            selector: { matchLabels: appLabel(service) },
            endpoints: [{ port: service === "storage-s3-api" ? "ops" : "http", path: "/metrics", interval: "30s" }],
        },
    };
}

/** Prometheus, scraping /metrics. */
const monitoring: Peer = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } };
const traefik = inNamespace("kube-system", { "app.kubernetes.io/name": "traefik" });
const networkPolicy = (name: string, pods: Record<string, string>, spec: Record<string, unknown>) =>
    networkPolicyIn(NAMESPACE, name, pods, spec);

/**
 * Nothing reaches a pod of the namespace unless a policy lets it: the ingress controller reaches both services,
 * storage-kv-api reaches only storage-s3-api, storage-s3-api reaches only its backend and Vault, and only
 * storage-s3-api (and SeaweedFS itself) reaches the backend. K3s enforces these (its network policy controller).
 */
export function networkPolicies(backend: StoragePeer, vaultNamespace: string): KubeObject[] {
    const s3 = appLabel("storage-s3-api");
    const kv = appLabel("storage-kv-api");
    const seaweed = appLabel(SEAWEEDFS_NAME);
    const backendEgress = backend.inCluster
        ? { to: [here(seaweed)], ports: [tcp(SEAWEEDFS_S3_PORT)] }
        : { to: anywhere, ports: [tcp(backend.port)] };
    return [
        denyIngress(NAMESPACE),
        networkPolicy("storage-s3-api", s3, {
            policyTypes: ["Ingress", "Egress"],
            ingress: [
                { from: [traefik, here(kv)], ports: [tcp(HTTP_PORT)] },
                { from: [monitoring], ports: [tcp(OPS_PORT)] },
            ],
            egress: [dnsEgress, vaultEgress(vaultNamespace), backendEgress],
        }),
        networkPolicy("storage-kv-api", kv, {
            policyTypes: ["Ingress", "Egress"],
            ingress: [{ from: [traefik, monitoring], ports: [tcp(HTTP_PORT)] }],
            egress: [dnsEgress, { to: [here(s3)], ports: [tcp(HTTP_PORT)] }],
        }),
        ...(backend.inCluster
            ? [
                  networkPolicy(SEAWEEDFS_NAME, seaweed, {
                      policyTypes: ["Ingress"],
                      ingress: [{ from: [here(seaweed)] }, { from: [here(s3)], ports: [tcp(SEAWEEDFS_S3_PORT)] }],
                  }),
              ]
            : []),
    ];
}

/** The services' public names: path-style S3 at s3.<domain>, the document store at kv.<domain>. */
export const hostsFor = (domain: string) => ({ s3: `s3.${domain}`, kv: `kv.${domain}` });

/** HTTPS only (Traefik's websecure), certificates from the stack's issuer through cert-manager's ingress-shim. */
export function ingresses(domain: string, ingressClass: string, issuer: string): KubeObject[] {
    const hosts = hostsFor(domain);
    const ingress = (service: Service, host: string, path: string): KubeObject => ({
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: {
            ...meta(service),
            annotations: {
                "cert-manager.io/cluster-issuer": issuer,
                "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
                "traefik.ingress.kubernetes.io/router.tls": "true",
            },
        },
        spec: {
            ingressClassName: ingressClass,
            tls: [{ hosts: [host], secretName: `${service}-tls` }],
            rules: [
                {
                    host,
                    http: {
                        paths: [
                            {
                                path,
                                pathType: "Prefix",
                                backend: { service: { name: service, port: { number: HTTP_PORT } } },
                            },
                        ],
                    },
                },
            ],
        },
    });
    // S3 is path-style: every path is a bucket's. The document store's API is under /v1; its /metrics and probes stay inside.
    return [ingress("storage-s3-api", hosts.s3, "/"), ingress("storage-kv-api", hosts.kv, "/v1")];
}
