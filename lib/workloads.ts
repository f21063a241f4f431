// What every layer's workloads share, in whichever namespace they run: object metadata, the Vault Secrets
// Operator's logins and syncs (a key reaches a pod only as a file synced from Vault's KV), the internal CA a pod
// checks Vault's certificate with, hardened pods and containers, and network policy peers. The apps layer's
// services and the backup layer's job are written with these, so each mechanism has one implementation.
import type * as pulumi from "@pulumi/pulumi";
import type { K3sManifests } from "./k3s-manifests";
import { clusterIssuerRef, type IssuerRef, type KubeObject, labels } from "./kube";
import type { RemoteScript } from "./remote-script";

export const meta = (namespace: string, name: string, extra: Record<string, string> = {}) => ({
    name,
    namespace,
    labels: { ...labels, ...extra },
});
export const appLabel = (app: string) => ({ "app.kubernetes.io/name": app });

export type Certificate = KubeObject<
    "Certificate",
    { secretName: string; dnsNames: string[]; privateKey: { algorithm: "ECDSA"; size: 256 }; issuerRef: IssuerRef }
>;

/** cert-manager writes the internal CA into this certificate's `ca.crt`: the file a pod checks Vault with. */
export function vaultCaCertificate(namespace: string, secretName: string, internalCaIssuer: string): Certificate {
    return {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: meta(namespace, secretName),
        spec: {
            secretName,
            dnsNames: [`${secretName}.${namespace}.svc`],
            privateKey: { algorithm: "ECDSA", size: 256 },
            issuerRef: clusterIssuerRef(internalCaIssuer),
        },
    };
}

/** A Vault KV secret (under `apps/<service>/`) the operator syncs into a Kubernetes Secret of the given name. */
export interface SyncedSecret {
    /** The app whose Vault role reads it (its policy allows only its own folder); also its service account. */
    readonly service: string;
    /** Under `apps/<service>/` in the KV mount. */
    readonly vaultPath: string;
    readonly secretName: string;
    /** Deployments restarted when the secret changes (a member added, a key rotated). */
    readonly restart: string[];
}

/**
 * The syncs written as the manifest `<name>`, then a wait until every synced Secret and the namespace's Vault CA
 * certificate (`caSecret`) exist: what a workload that reads them must start after.
 */
export function writeSyncedSecrets(
    k3s: K3sManifests,
    name: string,
    sync: { namespace: string; kvMount: string; synced: readonly SyncedSecret[]; caSecret: string },
    after: pulumi.Resource[],
): RemoteScript {
    const { namespace, kvMount, synced, caSecret } = sync;
    const written = k3s.write(name, secretSyncObjects(namespace, kvMount, "kubernetes", synced), after);
    return k3s.wait(
        name,
        {
            K3S_WAIT_SECRETS: synced.map((s) => `${namespace}/${s.secretName}`).join(" "),
            K3S_WAIT_CERTIFICATES: `${namespace}/${caSecret}`,
        },
        [written],
    );
}

/** The operator logs in as each app (its Kubernetes auth role) and syncs that app's secrets into the namespace. */
export function secretSyncObjects(
    namespace: string,
    kvMount: string,
    authMount: string,
    synced: readonly SyncedSecret[],
): KubeObject[] {
    const services = [...new Set(synced.map((s) => s.service))];
    return [
        ...services.map((service): KubeObject => ({
            apiVersion: "secrets.hashicorp.com/v1beta1",
            kind: "VaultAuth",
            metadata: meta(namespace, service),
            spec: {
                method: "kubernetes",
                mount: authMount,
                kubernetes: { role: service, serviceAccount: service, audiences: ["vault"] },
            },
        })),
        ...synced.map((s): KubeObject => ({
            apiVersion: "secrets.hashicorp.com/v1beta1",
            kind: "VaultStaticSecret",
            metadata: meta(namespace, s.secretName),
            spec: {
                vaultAuthRef: s.service,
                mount: kvMount,
                type: "kv-v2",
                path: `apps/${s.service}/${s.vaultPath}`,
                refreshAfter: "60s",
                destination: { name: s.secretName, create: true },
                rolloutRestartTargets: s.restart.map((name) => ({ kind: "Deployment", name })),
            },
        })),
    ];
}

export interface Container {
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    env: { name: string; value: string }[];
    ports?: { name: string; containerPort: number }[];
    volumeMounts: { name: string; mountPath: string; readOnly: boolean }[];
    resources: { requests: Record<string, string>; limits: Record<string, string> };
    securityContext: {
        runAsNonRoot: true;
        allowPrivilegeEscalation: false;
        readOnlyRootFilesystem: true;
        capabilities: { drop: ["ALL"] };
    };
    livenessProbe?: Probe;
    readinessProbe?: Probe;
    lifecycle?: { preStop: { sleep: { seconds: number } } };
}

export interface Probe {
    httpGet: { path: string; port: number };
    periodSeconds: number;
    failureThreshold: number;
}

export type Volume =
    | { name: string; secret: { secretName: string; defaultMode: number } }
    | { name: string; emptyDir: { sizeLimit: string } }
    | {
          name: string;
          projected: {
              sources: (
                  | { serviceAccountToken: { audience: string; expirationSeconds: number; path: string } }
                  | { secret: { name: string; items: { key: string; path: string }[] } }
              )[];
          };
      };

export interface PodSpec {
    serviceAccountName: string;
    automountServiceAccountToken: false;
    terminationGracePeriodSeconds: number;
    /** A Job's pods: never restarted in place, so each failure is a failed pod the Job counts. */
    restartPolicy?: "Never";
    securityContext: {
        runAsNonRoot: true;
        runAsUser: number;
        runAsGroup: number;
        fsGroup: number;
        seccompProfile: { type: "RuntimeDefault" };
    };
    initContainers?: Container[];
    containers: Container[];
    volumes: Volume[];
}

/** Every container: no privilege escalation, no capabilities, a read-only root filesystem. */
export const hardened: Container["securityContext"] = {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
};

/** The platform's images' user (their Dockerfiles: USER 65532:65532). */
export const nonRootPod: PodSpec["securityContext"] = {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    fsGroup: 65532,
    seccompProfile: { type: "RuntimeDefault" },
};

export const secretVolume = (name: string, secretName: string): Volume => ({
    name,
    secret: { secretName, defaultMode: 0o440 },
});
export const tmpVolume: Volume = { name: "tmp", emptyDir: { sizeLimit: "64Mi" } };

/**
 * The projected service-account token a pod logs in to Vault with (audience `vault`, which the Kubernetes auth
 * roles expect) and the internal CA (`ca.crt`) from the namespace's certificate, both under one mount.
 */
export const vaultLoginVolume = (name: string, caSecret: string): Volume => ({
    name,
    projected: {
        sources: [
            { serviceAccountToken: { audience: "vault", expirationSeconds: 3600, path: "token" } },
            { secret: { name: caSecret, items: [{ key: "ca.crt", path: "ca.crt" }] } },
        ],
    },
});

export const mount = (name: string, mountPath: string, readOnly = true) => ({ name, mountPath, readOnly });
export const env = (vars: Record<string, string>) => Object.entries(vars).map(([name, value]) => ({ name, value }));

/**
 * Creates the bucket BUCKET at STORAGE_S3_ENDPOINT (region S3_REGION, path-style) with the credentials in the
 * JSON file S3_CREDENTIALS_FILE, retrying until the server answers; a bucket that exists already is fine. Run by
 * `node -e` in an image that has @aws-sdk/client-s3.
 */
export const CREATE_BUCKET_SCRIPT = [
    'const fs = require("node:fs");',
    'const { S3Client, CreateBucketCommand } = require("@aws-sdk/client-s3");',
    "const credentials = JSON.parse(fs.readFileSync(process.env.S3_CREDENTIALS_FILE, 'utf8'));",
    "const s3 = new S3Client({ endpoint: process.env.STORAGE_S3_ENDPOINT, region: process.env.S3_REGION, forcePathStyle: true, credentials });",
    "const once = () => s3.send(new CreateBucketCommand({ Bucket: process.env.BUCKET })).catch((e) => {",
    "  if (e.name === 'BucketAlreadyOwnedByYou' || e.name === 'BucketAlreadyExists') return;",
    "  console.log(JSON.stringify({ message: 'bucket not made yet', error: e.name })); return new Promise((r) => setTimeout(r, 3000)).then(once);",
    "});",
    "once();",
].join("\n");

/** A network policy's peer: pods, or pods of another namespace, or addresses. */
export interface Peer {
    namespaceSelector?: { matchLabels: Record<string, string> };
    podSelector?: { matchLabels: Record<string, string> };
    ipBlock?: { cidr: string };
}
export const inNamespace = (namespace: string, pods: Record<string, string>): Peer => ({
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
    podSelector: { matchLabels: pods },
});
/** Pods of the policy's own namespace. */
export const here = (pods: Record<string, string>): Peer => ({ podSelector: { matchLabels: pods } });
/** Anywhere, IPv4 and IPv6: a server outside the cluster. */
/** An S3 store as a pod's network policy sees it: SeaweedFS's gateway pods in the cluster, or a port outside. */
export type StoragePeer = { inCluster: true } | { inCluster: false; port: number };

/** The peer for a store's endpoint; a URL without a port is on its scheme's. */
export function storagePeer(store: { readonly inCluster: boolean; readonly endpoint: string }): StoragePeer {
    if (store.inCluster) return { inCluster: true };
    const url = new URL(store.endpoint);
    return { inCluster: false, port: Number(url.port || (url.protocol === "http:" ? 80 : 443)) };
}

export const anywhere: Peer[] = [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }];
export const tcp = (port: number) => ({ protocol: "TCP", port });
/** The cluster's DNS, which every pod that names a service needs. */
export const dnsEgress = {
    to: [inNamespace("kube-system", { "k8s-app": "kube-dns" })],
    ports: [{ protocol: "UDP", port: 53 }, tcp(53)],
};
/** Vault's servers, on its API port. */
export const vaultEgress = (vaultNamespace: string) => ({
    to: [inNamespace(vaultNamespace, { "app.kubernetes.io/name": "vault" })],
    ports: [tcp(8200)],
});

export function networkPolicy(
    namespace: string,
    name: string,
    pods: Record<string, string>,
    spec: Record<string, unknown>,
): KubeObject {
    return {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: meta(namespace, name),
        spec: { podSelector: { matchLabels: pods }, ...spec },
    };
}

/** Nothing reaches a pod of the namespace unless another policy lets it. */
export const denyIngress = (namespace: string): KubeObject => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(namespace, "deny-ingress"),
    spec: { podSelector: {}, policyTypes: ["Ingress"] },
});
