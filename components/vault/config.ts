// Vault configured as code with @pulumi/vault, once the bootstrap has unsealed it: KV v2 at `secret/`, transit
// with one key per storage service (aes256-gcm96, rotated automatically, never deletable), a PKI engine for
// service certificates, the Kubernetes auth method with one role per app's service account, a least-privilege
// policy per app, an admin policy (and token) for day 2, and a file audit device. Given a provider that
// reaches Vault with verified TLS. Not yet composed: @pulumi/vault's plugin cannot be built on this machine,
// so the program could not be previewed here with it (see the README).
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { adminPolicy, appPolicy, DEFAULT_MOUNTS } from "./policies";

export interface AppIdentity {
    /** The app's name: its transit key, policy, auth role and PKI role are named after it. */
    name: string;
    namespace: string;
    serviceAccount: string;
    /** Whether it encrypts with its own transit key (the storage services). */
    transitKey: boolean;
}

export interface VaultConfigurationArgs {
    provider: vault.Provider;
    apps: AppIdentity[];
    /** How often transit keys rotate, in days. */
    transitRotationDays?: number;
}

const DAY = 24 * 60 * 60;

export class VaultConfiguration extends pulumi.ComponentResource {
    readonly mounts = DEFAULT_MOUNTS;
    /** Secret: a periodic token with the admin policy, for day-2 work in place of the root token. */
    readonly adminToken: pulumi.Output<string>;

    constructor(name: string, args: VaultConfigurationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:vault:Configuration", name, {}, opts);
        const o = { parent: this, provider: args.provider };
        const { kv, transit, pki } = this.mounts;

        new vault.Mount(`${name}-kv`, { path: kv, type: "kv", options: { version: "2" } }, o);
        const transitMount = new vault.Mount(`${name}-transit`, { path: transit, type: "transit" }, o);
        const pkiMount = new vault.Mount(
            `${name}-pki`,
            { path: pki, type: "pki", maxLeaseTtlSeconds: 5 * 365 * DAY, defaultLeaseTtlSeconds: 30 * DAY },
            o,
        );
        const root = new vault.pkisecret.SecretBackendRootCert(
            `${name}-pki-root`,
            {
                backend: pkiMount.path,
                type: "internal",
                commonName: "peoples-cloud services CA",
                keyType: "ec",
                keyBits: 256,
                ttl: String(5 * 365 * DAY),
            },
            o,
        );

        const kubernetes = new vault.AuthBackend(`${name}-kubernetes`, { type: "kubernetes", path: "kubernetes" }, o);
        // In the cluster Vault reviews tokens with its own service account (the chart's auth-delegator role).
        const kubernetesConfig = new vault.kubernetes.AuthBackendConfig(
            `${name}-kubernetes-config`,
            { backend: kubernetes.path, kubernetesHost: "https://kubernetes.default.svc" },
            o,
        );

        for (const app of args.apps) {
            if (app.transitKey) {
                new vault.transit.SecretBackendKey(
                    `${name}-transit-${app.name}`,
                    {
                        backend: transitMount.path,
                        name: app.name,
                        type: "aes256-gcm96",
                        autoRotatePeriod: (args.transitRotationDays ?? 30) * DAY,
                        deletionAllowed: false,
                        exportable: false,
                    },
                    o,
                );
            }
            const policy = new vault.Policy(
                `${name}-policy-${app.name}`,
                { name: app.name, policy: appPolicy(app.name) },
                o,
            );
            new vault.kubernetes.AuthBackendRole(
                `${name}-role-${app.name}`,
                {
                    backend: kubernetes.path,
                    roleName: app.name,
                    boundServiceAccountNames: [app.serviceAccount],
                    boundServiceAccountNamespaces: [app.namespace],
                    tokenPolicies: [policy.name],
                    tokenTtl: 3600,
                    audience: "vault",
                },
                { ...o, dependsOn: [kubernetesConfig] },
            );
            new vault.pkisecret.SecretBackendRole(
                `${name}-pki-role-${app.name}`,
                {
                    backend: pkiMount.path,
                    name: app.name,
                    allowedDomains: [
                        `${app.name}.${app.namespace}.svc`,
                        `${app.name}.${app.namespace}.svc.cluster.local`,
                    ],
                    allowBareDomains: true,
                    allowSubdomains: false,
                    allowLocalhost: false,
                    keyType: "ec",
                    ttl: String(30 * DAY),
                    maxTtl: String(90 * DAY),
                },
                { ...o, dependsOn: [root] },
            );
        }

        const admin = new vault.Policy(`${name}-policy-admin`, { name: "admin", policy: adminPolicy() }, o);
        // Periodic: renewable for as long as it is used, not bound to the root token's lifetime.
        const adminToken = new vault.Token(
            `${name}-admin-token`,
            {
                policies: [admin.name],
                noParent: true,
                period: "768h",
                renewable: true,
                displayName: "peoples-cloud-admin",
            },
            { ...o, additionalSecretOutputs: ["clientToken"] },
        );
        this.adminToken = pulumi.secret(adminToken.clientToken);

        new vault.Audit(
            `${name}-audit`,
            { type: "file", path: "file", options: { file_path: "/vault/audit/audit.log" } },
            o,
        );
        this.registerOutputs({ adminToken: this.adminToken });
    }
}
