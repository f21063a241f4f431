// Each service's pod as the cluster runs it: its environment, the Secrets mounted as the files it reads, the
// projected service-account token it logs in to Vault with, and the hardening the policy pack requires. One
// function per pod, so a test can start a service exactly as its pod would (same variables, same files).
import {
    type Container,
    CREATE_BUCKET_SCRIPT,
    env,
    hardened,
    mount,
    nonRootPod,
    type PodSpec,
    type Probe,
    secretVolume,
    tmpVolume,
    vaultLoginVolume,
    type Volume,
} from "../../lib/workloads";

export type { Container, PodSpec, Volume };

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

const probe = (path: string, port: number): Probe => ({
    httpGet: { path, port },
    periodSeconds: 10,
    failureThreshold: 3,
});

function pod(service: Service, containers: Container[], volumes: Volume[], init?: Container[]): PodSpec {
    return {
        serviceAccountName: service,
        // Only storage-s3-api needs a token, for Vault's audience: projected, not the API's default one.
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: PRE_STOP_SECONDS + SHUTDOWN_GRACE_SECONDS + 5,
        securityContext: nonRootPod,
        ...(init ? { initContainers: init } : {}),
        containers,
        volumes: [...volumes, tmpVolume],
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
            vaultLoginVolume("vault", SECRETS.vaultCa),
        ],
    );
}

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
                command: ["node", "-e", CREATE_BUCKET_SCRIPT],
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
