// Settings from the environment and secrets from files (mounted Kubernetes Secrets or Vault Agent
// templates), never from the command line or the environment: shared by the service and its jobs.
import * as fs from "node:fs";
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { BackendHttpHandler } from "./backend-http";
import { TransitClient, vaultAgent } from "./vault";
import { kubernetesLogin, tokenFileLogin, VaultSession } from "./vault-session";

export function setting(name: string, fallback?: string): string {
    const value = process.env[name] ?? fallback;
    if (value === undefined || value === "") throw new Error(`storage-s3-api: set ${name}`);
    return value;
}

export const secretFile = (name: string) => fs.readFileSync(setting(name), "utf8").trim();

/** A JSON secret file; a parse error would quote the file, so it is replaced by one that does not. */
export function jsonSecretFile<T>(name: string): T {
    try {
        return JSON.parse(secretFile(name)) as T;
    } catch {
        throw new Error(`storage-s3-api: ${name} does not hold valid JSON`);
    }
}

const silentLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** A client of the storage backend, any S3-compatible endpoint. */
export function backendClient(
    endpoint: string,
    region: string,
    credentials: { accessKeyId: string; secretAccessKey: string },
    overrides: Partial<S3ClientConfig> = {},
): S3Client {
    const client = new S3Client({
        endpoint,
        region,
        forcePathStyle: true,
        credentials,
        // Content is authenticated end to end; checksums on the backend leg only cost CPU.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        requestHandler: new BackendHttpHandler(),
        // Without a logger of its own the SDK prints a warning to the console for each failed streaming upload
        // (a lost conditional write, a backend that went away): a line that is not the service's JSON log.
        logger: silentLogger,
        ...overrides,
    });
    // The service logs each request itself. The SDK's logger step filters every command's input and output for
    // its logger even when that logger drops them: about 60 µs of CPU per backend call.
    client.middlewareStack.remove("loggerMiddleware");
    return client;
}

/** The storage backend: BACKEND_ENDPOINT, BACKEND_REGION and BACKEND_CREDENTIALS_FILE. */
export function backendFromSettings(): S3Client {
    return backendClient(
        setting("BACKEND_ENDPOINT"),
        setting("BACKEND_REGION", "us-east-1"),
        jsonSecretFile<{ accessKeyId: string; secretAccessKey: string }>("BACKEND_CREDENTIALS_FILE"),
    );
}

/** Where the kubelet projects the pod's service-account token. */
export const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * Vault's transit engine: VAULT_ADDR, VAULT_CACERT (for https), TRANSIT_KEY, and the token's source. In a pod:
 * VAULT_AUTH_ROLE, the Kubernetes auth role to log in as with the service-account token in VAULT_JWT_FILE, at
 * VAULT_AUTH_MOUNT. Without a role (a local run): VAULT_TOKEN_FILE.
 */
export function transitFromSettings(
    onEvent?: (message: string, fields: Record<string, unknown>) => void,
): TransitClient {
    const address = setting("VAULT_ADDR").replace(/\/+$/, "");
    const caFile = process.env.VAULT_CACERT;
    let ca: string | undefined;
    try {
        ca = caFile ? fs.readFileSync(caFile, "utf8") : undefined;
    } catch {
        throw new Error(`storage-s3-api: VAULT_CACERT ${caFile} is not readable`);
    }
    const agent = vaultAgent(address, ca);
    const role = process.env.VAULT_AUTH_ROLE;
    const login = role
        ? kubernetesLogin({
              address,
              agent,
              role,
              mount: setting("VAULT_AUTH_MOUNT", "kubernetes"),
              jwtFile: setting("VAULT_JWT_FILE", SERVICE_ACCOUNT_TOKEN),
          })
        : process.env.VAULT_TOKEN_FILE
          ? tokenFileLogin(process.env.VAULT_TOKEN_FILE)
          : undefined;
    if (!login) throw new Error("storage-s3-api: set VAULT_AUTH_ROLE (in a pod) or VAULT_TOKEN_FILE (a local run)");
    const session = new VaultSession({ address, agent, login, onEvent: (m, f) => onEvent?.(m, { role, ...f }) });
    return new TransitClient({
        address,
        agent,
        token: () => session.token(),
        refused: (token) => session.refused(token),
        keyName: setting("TRANSIT_KEY", "storage-s3-api"),
    });
}
