// The apps' keys: generated once (kept only in Pulumi's encrypted state, never changed by a re-run) and
// written with the admin token into Vault's KV, one secret per Kubernetes Secret the services mount, under each
// service's own folder (`apps/<service>/`), which only its policy reads. A function of its parent, so a test
// can run it against a real Vault outside any cluster.
import * as pulumi from "@pulumi/pulumi";
import { SERVICE_ACCESS_KEY_IDS } from "../../lib/access-keys";
import { RandomToken } from "../../lib/random-token";
import type { VaultServer } from "../../lib/vault/operator";
import { VaultWrite } from "../../lib/vault/writes";
import { DEFAULT_MOUNTS } from "../vault/policies";
import { FILES, type Service } from "./pods";
import { seaweedfsS3Config } from "./seaweedfs";

/** S3 credentials, secret. */
export interface S3Credentials {
    readonly accessKeyId: pulumi.Input<string>;
    readonly secretAccessKey: pulumi.Input<string>;
}

export interface MemberCredentials {
    /** The member's S3 access key id (its name) and secret (secret). */
    accessKeyId: string;
    secretAccessKey: pulumi.Output<string>;
    /** Bearer token for storage-kv-api (secret). */
    kvToken: pulumi.Output<string>;
}

export interface AppSecretsArgs {
    /** The Vault CLI the writes go through, and the (admin) token they are made with. */
    readonly operator: VaultServer;
    readonly token: pulumi.Input<string>;
    /** What must be in place first: Vault's configuration (its KV mount and the services' policies). */
    readonly after: pulumi.Resource[];
    readonly members: readonly string[];
    /** SeaweedFS, whose admin credentials are generated here, or a provider's credentials (secret). */
    readonly backend: "seaweedfs" | S3Credentials;
}

export interface AppSecrets {
    readonly members: Record<string, MemberCredentials>;
    /** The Vault KV writes: the secrets' sync waits for them. */
    readonly writes: VaultWrite[];
    /** The backend's credentials (secret): SeaweedFS's generated admin identity, or the provider's. */
    readonly backend: S3Credentials;
}

/** The access key id storage-kv-api uses with storage-s3-api; no member may be named so (stacks/schema.ts). */
const KV_API_KEY_ID = SERVICE_ACCESS_KEY_IDS.storageKvApi;

const hexToBase64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

/**
 * The files of each Vault KV secret (one Kubernetes Secret each, the files its service reads), from the keys'
 * values: random ones as hex, as RandomToken makes them. A test writes the same files for the services it starts.
 */
export const appSecretFiles = {
    /** storage-s3-api's `keys`: each access key id (members' and storage-kv-api's) with its secret, ETag and name keys. */
    s3ApiKeys: (memberKeys: Record<string, string>, kvApiS3Secret: string, etagKey: string, nameKey: string) => ({
        [FILES.accessKeys]: JSON.stringify({ ...memberKeys, [KV_API_KEY_ID]: kvApiS3Secret }),
        [FILES.etagKey]: hexToBase64(etagKey),
        [FILES.nameKey]: hexToBase64(nameKey),
    }),
    /** storage-s3-api's `backend`: the backend's credentials. */
    s3ApiBackend: (credentials: { accessKeyId: string; secretAccessKey: string }) => ({
        [FILES.backendCredentials]: JSON.stringify(credentials),
    }),
    /** storage-kv-api's `keys`: its S3 credentials, each member's token, its secret key. */
    kvApiKeys: (memberTokens: Record<string, string>, kvApiS3Secret: string, secretKey: string) => ({
        [FILES.s3Credentials]: JSON.stringify({ accessKeyId: KV_API_KEY_ID, secretAccessKey: kvApiS3Secret }),
        [FILES.tokens]: JSON.stringify(
            Object.fromEntries(Object.entries(memberTokens).map(([member, token]) => [token, member])),
        ),
        [FILES.secretKey]: hexToBase64(secretKey),
    }),
};

export function storeAppSecrets(parent: pulumi.Resource, name: string, args: AppSecretsArgs): AppSecrets {
    const { kv } = DEFAULT_MOUNTS;
    const random = (suffix: string, bytes: number, protect = false) =>
        new RandomToken(`${name}-${suffix}`, { bytes }, { parent, protect });

    // Generated once; a re-run never changes them. Losing the name key loses every object's name, and the
    // ETag key every client's ETags: they are protected from a destroy.
    const etagKey = random("etag-key", 32, true);
    const nameKey = random("name-key", 32, true);
    const kvApiS3Secret = random("kv-api-s3-secret", 20);
    const kvApiSecretKey = random("kv-api-secret-key", 32);
    const members: Record<string, MemberCredentials> = Object.fromEntries(
        args.members.map((member) => [
            member,
            {
                accessKeyId: member,
                secretAccessKey: pulumi.secret(random(`member-${member}-s3-secret`, 20).value),
                kvToken: pulumi.secret(random(`member-${member}-kv-token`, 32).value),
            },
        ]),
    );
    const backendCredentials: S3Credentials =
        args.backend !== "seaweedfs"
            ? args.backend
            : {
                  accessKeyId: random("seaweedfs-access-key-id", 10).value.apply((v) => v.toUpperCase()),
                  secretAccessKey: random("seaweedfs-secret-key", 20).value,
              };

    // Each Vault KV secret holds the files of one Kubernetes Secret, written with the admin token after
    // Vault's configuration (its policies let each service read only its own folder). As with transit keys,
    // no run deletes them (no delete path): the ETag and name keys are what the stored data depends on.
    const kvWrites: VaultWrite[] = [];
    const store = (service: Service, path: string, files: pulumi.Input<Record<string, string>>) => {
        const write = new VaultWrite(
            `${name}-kv-${service}-${path}`,
            {
                operator: args.operator,
                token: args.token,
                path: `${kv}/data/apps/${service}/${path}`,
                // A secret Output: the whole data is kept encrypted in the state.
                data: pulumi.secret(pulumi.output(files).apply((data) => ({ data }))),
            },
            { parent, dependsOn: args.after },
        );
        kvWrites.push(write);
    };
    const accessKeys = pulumi
        .all(Object.values(members).map((m) => pulumi.all([m.accessKeyId, m.secretAccessKey])))
        .apply((pairs) => Object.fromEntries(pairs));
    store(
        "storage-s3-api",
        "keys",
        pulumi
            .all([accessKeys, kvApiS3Secret.value, etagKey.value, nameKey.value])
            .apply(([keys, kvSecret, etag, name]) => appSecretFiles.s3ApiKeys(keys, kvSecret, etag, name)),
    );
    const credentialsJson = pulumi
        .all([backendCredentials.accessKeyId, backendCredentials.secretAccessKey])
        .apply(([accessKeyId, secretAccessKey]) => ({ accessKeyId, secretAccessKey }));
    store("storage-s3-api", "backend", credentialsJson.apply(appSecretFiles.s3ApiBackend));
    if (args.backend === "seaweedfs") {
        store(
            "storage-s3-api",
            "seaweedfs",
            credentialsJson.apply((c) => ({ seaweedfs_s3_config: seaweedfsS3Config(c) })),
        );
    }
    const tokens = pulumi
        .all(Object.entries(members).map(([member, m]) => m.kvToken.apply((t) => [member, t] as const)))
        .apply((pairs) => Object.fromEntries(pairs));
    store(
        "storage-kv-api",
        "keys",
        pulumi
            .all([tokens, kvApiS3Secret.value, kvApiSecretKey.value])
            .apply(([memberTokens, kvSecret, secretKey]) =>
                appSecretFiles.kvApiKeys(memberTokens, kvSecret, secretKey),
            ),
    );
    return { members, writes: kvWrites, backend: backendCredentials };
}
