// Vault in the cluster, as K3s manifests: its namespace and TLS certificate from the internal CA, then the
// official chart with integrated raft storage — three replicas on different nodes when the cluster has three
// or more nodes, one non-HA server otherwise. Pure functions, so the unit tests read what a node receives.
import {
    clusterIssuerRef,
    helmChart,
    type HelmChart,
    type IssuerRef,
    type KubeObject,
    labels,
    type PinnedImage,
} from "../../lib/kube";
import { tokenFromStdin } from "../../lib/vault/operator";
import { vault, vaultSecretsOperator } from "./versions";

export const VAULT_NAMESPACE = vault.chart.namespace;
export const TLS_SECRET = "vault-tls";
const TLS_DIR = `/vault/userconfig/${TLS_SECRET}`;
/** Where the other servers, and clients in the cluster, reach the first: its pod's stable name. */
export const LEADER_ADDRESS = "https://vault-0.vault-internal:8200";
export const CA_CERT_FILE = `${TLS_DIR}/ca.crt`;

export type Namespace = KubeObject<"Namespace", undefined>;

export type Certificate = KubeObject<
    "Certificate",
    {
        secretName: string;
        dnsNames: string[];
        ipAddresses: string[];
        privateKey: { algorithm: "ECDSA"; size: 256; rotationPolicy: "Always" };
        issuerRef: IssuerRef;
    }
>;

/** A namespace, and in it a certificate (secret of the same name) from the given ClusterIssuer. */
function namespaceWithCertificate(
    namespace: string,
    name: string,
    names: { dnsNames: string[]; ipAddresses: string[] },
    issuer: string,
): [Namespace, Certificate] {
    return [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels }, spec: undefined },
        {
            apiVersion: "cert-manager.io/v1",
            kind: "Certificate",
            metadata: { name, namespace, labels },
            spec: {
                secretName: name,
                ...names,
                privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
                issuerRef: clusterIssuerRef(issuer),
            },
        },
    ];
}

/** Every name a client or a raft peer uses for a Vault server, and 127.0.0.1 for the CLI in its own pod. */
export function vaultTls(internalCaIssuer: string): [Namespace, Certificate] {
    const svc = (name: string) => [name, `${name}.${VAULT_NAMESPACE}`, `${name}.${VAULT_NAMESPACE}.svc`];
    const dnsNames = [
        ...svc("vault"),
        ...svc("vault-active"),
        ...svc("*.vault-internal"),
        `*.vault-internal.${VAULT_NAMESPACE}.svc.cluster.local`,
    ];
    return namespaceWithCertificate(
        VAULT_NAMESPACE,
        TLS_SECRET,
        { dnsNames, ipAddresses: ["127.0.0.1"] },
        internalCaIssuer,
    );
}

interface PodAntiAffinity {
    podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
            labelSelector: { matchLabels: Record<string, string> };
            topologyKey: "kubernetes.io/hostname";
        }[];
    };
}

export interface VaultValues {
    global: { tlsDisable: false };
    injector: { enabled: false };
    csi: { enabled: false };
    server: {
        image: PinnedImage;
        extraEnvironmentVars: { VAULT_CACERT: string };
        volumes: { name: string; secret: { secretName: string } }[];
        volumeMounts: { name: string; mountPath: string; readOnly: true }[];
        dataStorage: { enabled: true; size: string };
        auditStorage: { enabled: true; size: string };
        /** Lets Vault review service account tokens, for the Kubernetes auth method. */
        authDelegator: { enabled: true };
        affinity: PodAntiAffinity | "";
        standalone: { enabled: boolean; config?: string };
        ha: { enabled: boolean; replicas?: number; raft?: { enabled: true; setNodeId: true; config: string } };
    };
}

/**
 * The server's config: TLS listener, raft storage in the pod's volume, Kubernetes service registration. In HA
 * mode the chart gives each pod its cluster address; a standalone server is always vault-0, so it is written.
 */
export function vaultServerConfig(standalone: boolean): string {
    return [
        "ui = true",
        ...(standalone
            ? [
                  'api_addr = "https://vault-0.vault-internal:8200"',
                  'cluster_addr = "https://vault-0.vault-internal:8201"',
              ]
            : []),
        'listener "tcp" {',
        '  address = "[::]:8200"',
        '  cluster_address = "[::]:8201"',
        `  tls_cert_file = "${TLS_DIR}/tls.crt"`,
        `  tls_key_file = "${TLS_DIR}/tls.key"`,
        "}",
        'storage "raft" {',
        '  path = "/vault/data"',
        "}",
        'service_registration "kubernetes" {}',
        "",
    ].join("\n");
}

/** Three raft replicas, one per node, on three or more nodes; on fewer, one server (raft, not HA). */
export function vaultReplicas(nodeCount: number): 1 | 3 {
    return nodeCount >= 3 ? 3 : 1;
}

export function vaultChart(nodeCount: number): HelmChart {
    const replicas = vaultReplicas(nodeCount);
    const config = vaultServerConfig(replicas === 1);
    const values: VaultValues = {
        global: { tlsDisable: false },
        injector: { enabled: false },
        csi: { enabled: false },
        server: {
            image: vault.image,
            extraEnvironmentVars: { VAULT_CACERT: CA_CERT_FILE },
            volumes: [{ name: TLS_SECRET, secret: { secretName: TLS_SECRET } }],
            volumeMounts: [{ name: TLS_SECRET, mountPath: TLS_DIR, readOnly: true }],
            dataStorage: { enabled: true, size: "10Gi" },
            auditStorage: { enabled: true, size: "10Gi" },
            authDelegator: { enabled: true },
            affinity:
                replicas === 3
                    ? {
                          podAntiAffinity: {
                              requiredDuringSchedulingIgnoredDuringExecution: [
                                  {
                                      labelSelector: {
                                          matchLabels: { "app.kubernetes.io/name": "vault", component: "server" },
                                      },
                                      topologyKey: "kubernetes.io/hostname",
                                  },
                              ],
                          },
                      }
                    : "",
            standalone: replicas === 3 ? { enabled: false } : { enabled: true, config },
            ha:
                replicas === 3
                    ? { enabled: true, replicas, raft: { enabled: true, setNodeId: true, config } }
                    : { enabled: false },
        },
    };
    return helmChart(vault.chart, values);
}

/** The Vault CLI in pod N, run by `k3s kubectl exec` on a K3s server (the pod's env has VAULT_ADDR, VAULT_CACERT). */
export function vaultCliIn(pod: string): string[] {
    return ["k3s", "kubectl", "exec", "-i", "-n", VAULT_NAMESPACE, pod, "--", ...tokenFromStdin("vault")];
}

export const VSO_NAMESPACE = vaultSecretsOperator.chart.namespace;
/** A secret in the operator's namespace whose `ca.crt` is the internal CA, for its Vault connection. */
export const VSO_CA_SECRET = "vault-ca";

/**
 * The operator's namespace and a certificate there from the internal CA: cert-manager writes the CA into its
 * secret's `ca.crt`, which is what the operator's default VaultConnection needs to verify Vault.
 */
export function vaultSecretsOperatorTls(internalCaIssuer: string): [Namespace, Certificate] {
    const dnsNames = [`vault-secrets-operator.${VSO_NAMESPACE}.svc`];
    return namespaceWithCertificate(VSO_NAMESPACE, VSO_CA_SECRET, { dnsNames, ipAddresses: [] }, internalCaIssuer);
}

export interface VaultSecretsOperatorValues {
    controller: { manager: { image: PinnedImage }; kubeRbacProxy: { image: PinnedImage } };
    defaultVaultConnection: { enabled: true; address: string; caCertSecret: string; skipTLSVerify: false };
}

/** The operator, its default connection to Vault verified with the internal CA. Auth roles come with Vault's config. */
export function vaultSecretsOperatorChart(vaultAddress: string): HelmChart {
    const values: VaultSecretsOperatorValues = {
        controller: {
            manager: { image: vaultSecretsOperator.images.manager },
            kubeRbacProxy: { image: vaultSecretsOperator.images.kubeRbacProxy },
        },
        defaultVaultConnection: {
            enabled: true,
            address: vaultAddress,
            caCertSecret: VSO_CA_SECRET,
            skipTLSVerify: false,
        },
    };
    return helmChart(vaultSecretsOperator.chart, values);
}
