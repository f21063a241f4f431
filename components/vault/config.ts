// Vault configured as code once the bootstrap has unsealed it: KV v2 at `secret/`, transit with one key per
// storage service (aes256-gcm96, rotated automatically, never deletable or exportable), a PKI engine for
// service certificates, the Kubernetes auth method with one role per app's service account, a least-privilege
// policy per app, a file audit device, and an admin policy and token for day 2. The root token only creates
// the admin token and is then revoked; everything else is written with the admin token.
import * as pulumi from "@pulumi/pulumi";
import { formerly } from "../../lib/aliases";
import type { VaultServer } from "../../lib/vault/operator";
import { VaultAdminToken, VaultRootRevocation, VaultWrite, type VaultWriteArgs } from "../../lib/vault/writes";
import { adminPolicy, appPolicy, DEFAULT_MOUNTS } from "./policies";

export interface AppIdentity {
    /** The app's name: its transit key, policy, auth role and PKI role are named after it. */
    readonly name: string;
    /** Its Kubernetes namespace and service account, which Vault's Kubernetes auth role binds. */
    readonly namespace: string;
    readonly serviceAccount: string;
    /** Whether it encrypts with its own transit key (the storage services). */
    readonly transitKey: boolean;
}

/** The platform's storage services: each encrypts with its own transit key. */
export const STORAGE_SERVICES: readonly AppIdentity[] = ["storage-s3-api", "storage-kv-api"].map((name) => ({
    name,
    namespace: "storage",
    serviceAccount: name,
    transitKey: true,
}));

export interface VaultConfigurationArgs {
    /** The server the Vault CLI runs against (a standby forwards writes to the active server). */
    readonly server: VaultServer;
    /** Secret: the root token from the bootstrap; revoked once the configuration is in place. */
    readonly rootToken: pulumi.Input<string>;
    /** The bootstrap's per-server seal status: Vault is read only after this run has unsealed it. */
    readonly sealed: pulumi.Input<boolean[]>;
    /** The apps that get a policy, roles and (if they encrypt) a transit key. */
    readonly apps: readonly AppIdentity[];
    /** How often transit keys rotate, in days. */
    readonly transitRotationDays?: number;
    /** Where the audit device writes, on the server. */
    readonly auditFile?: string;
    /**
     * The Kubernetes API that reviews the apps' tokens, for a Vault outside the cluster. By default Vault runs
     * in it and uses the in-cluster address with its own service account's CA and token.
     */
    readonly kubernetes?: { readonly host: string; readonly caCert: string };
}

/**
 * An app's transit key. Derived: each object's data key is wrapped under a key derived from its id
 * (storage-s3-api checks at start).
 */
export const TRANSIT_KEY = { type: "aes256-gcm96", derived: true, exportable: false } as const;

/** An app's Kubernetes auth role: its service account in its namespace, tokens projected for audience `vault`. */
export function kubernetesAuthRole(app: AppIdentity) {
    return {
        bound_service_account_names: [app.serviceAccount],
        bound_service_account_namespaces: [app.namespace],
        token_policies: [app.name],
        token_ttl: "1h",
        audience: "vault",
    };
}

const YEARS_5 = `${5 * 365 * 24}h`;
/** The admin token's period: renewed by each `pulumi up` (or any `vault token renew`) once half is gone. */
const ADMIN_PERIOD_HOURS = 32 * 24;

export class VaultConfiguration extends pulumi.ComponentResource {
    readonly mounts = DEFAULT_MOUNTS;
    /** Secret: a periodic token with the admin policy, for day-2 work in place of the revoked root token. */
    readonly adminToken: pulumi.Output<string>;

    constructor(name: string, args: VaultConfigurationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:vault:VaultConfiguration", name, {}, formerly("peoples-cloud:vault:Configuration", opts));
        const operator = args.server;
        const admin = new VaultAdminToken(
            `${name}-admin`,
            {
                operator,
                rootToken: args.rootToken,
                policy: adminPolicy(),
                periodHours: ADMIN_PERIOD_HOURS,
                sealed: args.sealed,
            },
            { parent: this },
        );
        const written: VaultWrite[] = [];
        const set = (suffix: string, setting: Omit<VaultWriteArgs, "operator" | "token">, after: VaultWrite[] = []) => {
            const w = new VaultWrite(
                `${name}-${suffix}`,
                { operator, token: admin.token, ...setting },
                { parent: this, dependsOn: after },
            );
            written.push(w);
            return w;
        };
        const mount = (suffix: string, path: string, data: Record<string, unknown>) =>
            set(suffix, { path: `sys/mounts/${path}`, data, once: { read: "sys/mounts", key: `${path}/` } });
        /** A setting that can be rewritten any time and is deleted with its resource. */
        const owned = (suffix: string, path: string, data: Record<string, unknown>, after: VaultWrite[]) =>
            set(suffix, { path, data, deletePath: path }, after);

        const { kv, transit, pki } = this.mounts;
        mount("kv", kv, { type: "kv", options: { version: "2" } });
        const transitMount = mount("transit", transit, { type: "transit" });
        const pkiMount = mount("pki", pki, {
            type: "pki",
            config: { max_lease_ttl: YEARS_5, default_lease_ttl: "720h" },
        });
        const pkiRoot = set(
            "pki-root",
            {
                path: `${pki}/root/generate/internal`,
                data: { common_name: "peoples-cloud services CA", key_type: "ec", key_bits: 256, ttl: YEARS_5 },
                once: { read: `${pki}/config/issuers`, key: "default" },
            },
            [pkiMount],
        );
        const kubernetes = set("kubernetes", {
            path: "sys/auth/kubernetes",
            data: { type: "kubernetes" },
            once: { read: "sys/auth", key: "kubernetes/" },
        });
        // In the cluster Vault reviews tokens with its own service account (the chart's auth-delegator role).
        const kubernetesConfig = set(
            "kubernetes-config",
            {
                path: "auth/kubernetes/config",
                data: args.kubernetes
                    ? {
                          kubernetes_host: args.kubernetes.host,
                          kubernetes_ca_cert: args.kubernetes.caCert,
                          disable_local_ca_jwt: true,
                      }
                    : { kubernetes_host: "https://kubernetes.default.svc" },
            },
            [kubernetes],
        );

        for (const app of args.apps) {
            if (app.transitKey) {
                // Creating a key that exists changes nothing, so the create is safe to repeat.
                const key = set(
                    `transit-${app.name}`,
                    {
                        path: `${transit}/keys/${app.name}`,
                        data: TRANSIT_KEY,
                    },
                    [transitMount],
                );
                set(
                    `transit-${app.name}-config`,
                    {
                        path: `${transit}/keys/${app.name}/config`,
                        readPath: `${transit}/keys/${app.name}`,
                        data: {
                            auto_rotate_period: `${(args.transitRotationDays ?? 30) * 24}h`,
                            deletion_allowed: false,
                            exportable: false,
                        },
                    },
                    [key],
                );
            }
            const policy = owned(
                `policy-${app.name}`,
                `sys/policies/acl/${app.name}`,
                { policy: appPolicy(app.name) },
                [],
            );
            owned(`role-${app.name}`, `auth/kubernetes/role/${app.name}`, kubernetesAuthRole(app), [
                kubernetesConfig,
                policy,
            ]);
            owned(
                `pki-role-${app.name}`,
                `${pki}/roles/${app.name}`,
                {
                    allowed_domains: [
                        `${app.name}.${app.namespace}.svc`,
                        `${app.name}.${app.namespace}.svc.cluster.local`,
                    ],
                    allow_bare_domains: true,
                    allow_subdomains: false,
                    allow_localhost: false,
                    key_type: "ec",
                    key_bits: 256,
                    ttl: "720h",
                    max_ttl: "2160h",
                },
                [pkiRoot],
            );
        }

        set("audit", {
            path: "sys/audit/file",
            data: { type: "file", options: { file_path: args.auditFile ?? "/vault/audit/audit.log" } },
            once: { read: "sys/audit", key: "file/" },
        });

        new VaultRootRevocation(
            `${name}-root-revocation`,
            { operator, rootToken: args.rootToken },
            { parent: this, dependsOn: [admin, ...written] },
        );
        this.adminToken = pulumi.secret(admin.token);
        this.registerOutputs({ adminToken: this.adminToken });
    }
}
