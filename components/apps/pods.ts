// Each service's pod as the cluster runs it: its environment, the Secrets mounted as the files it reads, the
// projected service-account token it logs in to Vault with, and the hardening the policy pack requires. One
// function per pod, so a test can start a service exactly as its pod would (same variables, same files).

export type Service = "storage-s3-api" | "storage-kv-api";
export const NAMESPACE = "storage";
export const HTTP_PORT = 8080;
/** storage-s3-api's /livez, /readyz and /metrics, apart from S3 (a bucket may be called `metrics`). */
export const OPS_PORT = 9090;
/** What the services' SIGTERM handler waits for requests in flight (their default, set explicitly). */
export const SHUTDOWN_GRACE_SECONDS = 25;
/** Endpoints are removed while the pod sleeps before SIGTERM, so no new request reaches a draining pod. */
const PRE_STOP_SECONDS = 5;
/** The region storage-s3-api answers for, and clients sign with. */
export const S3_REGION = "us-east-1";
/** The bucket storage-kv-api keeps its collections in, made by its init container. */
export const KV_BUCKET = "kv-store";

/** The Kubernetes Secrets the Vault Secrets Operator writes, each synced from one Vault KV secret. */
export const SECRETS = {
    s3Keys: "storage-s3-api-keys",
    s3Backend: "storage-s3-api-backend",
    kvKeys: "storage-kv-api-keys",
    /** The internal CA (its `ca.crt`), from a certificate cert-manager issues in the namespace. */
    vaultCa: "vault-ca",
} as const;

/** File names inside those Secrets: the keys of the Vault KV secrets they come from. */
export const FILES = {
    accessKeys: "access-keys.json",
    etagKey: "etag.key",
    nameKey: "name.key",
    backendCredentials: "credentials.json",
    tokens: "tokens.json",
    s3Credentials: "s3-credentials.json",
    secretKey: "secret.key",
} as const;

const SECRETS_DIR = "/run/secrets/peoples-cloud";
const VAULT_DIR = "/run/secrets/vault";

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

interface Probe {
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

export interface S3ApiPodSettings {
    readonly image: string;
    /** The backend's S3 endpoint and region: SeaweedFS's gateway, or the configured provider. */
    readonly backendEndpoint: string;
    readonly backendRegion: string;
    /** Vault's address in the cluster; its certificate is checked with the internal CA. */
    readonly vaultAddress: string;
    /** The Kubernetes auth mount and role storage-s3-api logs in with (made by the Vault layer). */
    readonly vaultAuthMount: string;
    readonly vaultAuthRole: string;
    /** Its transit key. */
    readonly transitKey: string;
}

export interface KvApiPodSettings {
    readonly image: string;
    /** storage-s3-api in the cluster, never the backend. */
    readonly s3Endpoint: string;
}

const hardened: Container["securityContext"] = {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
};
const probe = (path: string, port: number): Probe => ({
    httpGet: { path, port },
    periodSeconds: 10,
    failureThreshold: 3,
});
const secretVolume = (name: string, secretName: string): Volume => ({
    name,
    secret: { secretName, defaultMode: 0o440 },
});
const tmp: Volume = { name: "tmp", emptyDir: { sizeLimit: "64Mi" } };
const mount = (name: string, mountPath: string, readOnly = true) => ({ name, mountPath, readOnly });
const env = (vars: Record<string, string>) => Object.entries(vars).map(([name, value]) => ({ name, value }));

function pod(service: Service, containers: Container[], volumes: Volume[], init?: Container[]): PodSpec {
    return {
        serviceAccountName: service,
        // Only storage-s3-api needs a token, for Vault's audience: projected, not the API's default one.
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: PRE_STOP_SECONDS + SHUTDOWN_GRACE_SECONDS + 5,
        // The images' user (Dockerfile: USER 65532:65532).
        securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            fsGroup: 65532,
            seccompProfile: { type: "RuntimeDefault" },
        },
        ...(init ? { initContainers: init } : {}),
        containers,
        volumes: [...volumes, tmp],
    };
}

/** storage-s3-api's pod: settings from the environment, keys and credentials as files, Vault by its token. */
export function s3ApiPod(s: S3ApiPodSettings): PodSpec {
    const keys = `${SECRETS_DIR}/keys`;
    const backend = `${SECRETS_DIR}/backend`;
    return pod(
        "storage-s3-api",
        [
            {
                name: "storage-s3-api",
                image: s.image,
                env: env({
                    LISTEN: `0.0.0.0:${HTTP_PORT}`,
                    OPS_LISTEN: `0.0.0.0:${OPS_PORT}`,
                    S3_REGION,
                    BACKEND_ENDPOINT: s.backendEndpoint,
                    BACKEND_REGION: s.backendRegion,
                    BACKEND_CREDENTIALS_FILE: `${backend}/${FILES.backendCredentials}`,
                    ACCESS_KEYS_FILE: `${keys}/${FILES.accessKeys}`,
                    ETAG_KEY_FILE: `${keys}/${FILES.etagKey}`,
                    NAME_KEY_FILE: `${keys}/${FILES.nameKey}`,
                    TRANSIT_KEY: s.transitKey,
                    VAULT_ADDR: s.vaultAddress,
                    VAULT_CACERT: `${VAULT_DIR}/ca.crt`,
                    VAULT_AUTH_MOUNT: s.vaultAuthMount,
                    VAULT_AUTH_ROLE: s.vaultAuthRole,
                    VAULT_JWT_FILE: `${VAULT_DIR}/token`,
                    SHUTDOWN_GRACE_SECONDS: String(SHUTDOWN_GRACE_SECONDS),
                }),
                ports: [
                    { name: "s3", containerPort: HTTP_PORT },
                    { name: "ops", containerPort: OPS_PORT },
                ],
                volumeMounts: [
                    mount("keys", keys),
                    mount("backend", backend),
                    mount("vault", VAULT_DIR),
                    mount("tmp", "/tmp", false),
                ],
                // Peak RSS measured 181-219 MiB streaming 2 GiB each way (its README).
                resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "2", memory: "512Mi" } },
                securityContext: hardened,
                livenessProbe: probe("/livez", OPS_PORT),
                readinessProbe: probe("/readyz", OPS_PORT),
                lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SECONDS } } },
            },
        ],
        [
            secretVolume("keys", SECRETS.s3Keys),
            secretVolume("backend", SECRETS.s3Backend),
            {
                name: "vault",
                projected: {
                    sources: [
                        // Vault's Kubernetes auth role expects this audience.
                        { serviceAccountToken: { audience: "vault", expirationSeconds: 3600, path: "token" } },
                        { secret: { name: SECRETS.vaultCa, items: [{ key: "ca.crt", path: "ca.crt" }] } },
                    ],
                },
            },
        ],
    );
}

/** Creates the bucket once storage-s3-api answers; an existing one is fine. Reads its credentials from the file. */
const createBucket = [
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

/** storage-kv-api's pod: its bucket made first, then the service on storage-s3-api with its own access key. */
export function kvApiPod(s: KvApiPodSettings): PodSpec {
    const keys = `${SECRETS_DIR}/keys`;
    const vars = {
        STORAGE_S3_ENDPOINT: s.s3Endpoint,
        S3_REGION,
        BUCKET: KV_BUCKET,
        S3_CREDENTIALS_FILE: `${keys}/${FILES.s3Credentials}`,
    };
    const resources = { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } };
    return pod(
        "storage-kv-api",
        [
            {
                name: "storage-kv-api",
                image: s.image,
                env: env({
                    LISTEN: `0.0.0.0:${HTTP_PORT}`,
                    ...vars,
                    TOKENS_FILE: `${keys}/${FILES.tokens}`,
                    SECRET_KEY_FILE: `${keys}/${FILES.secretKey}`,
                    SHUTDOWN_GRACE_SECONDS: String(SHUTDOWN_GRACE_SECONDS),
                }),
                ports: [{ name: "http", containerPort: HTTP_PORT }],
                volumeMounts: [mount("keys", keys), mount("tmp", "/tmp", false)],
                // Its page cache is 64 MiB (README).
                resources,
                securityContext: hardened,
                // Its liveness route is /healthz (README), not /livez.
                livenessProbe: probe("/healthz", HTTP_PORT),
                readinessProbe: probe("/readyz", HTTP_PORT),
                lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SECONDS } } },
            },
        ],
        [secretVolume("keys", SECRETS.kvKeys)],
        [
            {
                name: "create-bucket",
                image: s.image,
                command: ["node", "-e", createBucket],
                env: env(vars),
                volumeMounts: [mount("keys", keys)],
                resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
                securityContext: hardened,
            },
        ],
    );
}

/**
 * A container's environment for the same program run outside the cluster (a test): each path under a mount
 * becomes the same path under `root/<volume>`, where the caller puts that volume's files (a Secret's keys).
 */
export function processEnv(pod: PodSpec, container: string, root: string): Record<string, string> {
    const c = [...(pod.initContainers ?? []), ...pod.containers].find((x) => x.name === container);
    if (!c) throw new Error(`no container '${container}' in the pod`);
    const moved = (value: string) => {
        const m = c.volumeMounts.find((v) => value === v.mountPath || value.startsWith(`${v.mountPath}/`));
        return m ? `${root}/${m.name}${value.slice(m.mountPath.length)}` : value;
    };
    return Object.fromEntries(c.env.map((e) => [e.name, moved(e.value)]));
}
