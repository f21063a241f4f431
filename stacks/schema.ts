// The one schema of a stack's configuration: every non-secret setting the program takes, with defaults.
// Secrets are not here: `config.ts` lists them (`secretKeys`) and they never pass through this schema.
import { isIP } from "node:net";
import { z } from "zod";
import { cidrsOverlap, parseCidr } from "../lib/cidr";
import { longestIntervalSeconds } from "../lib/cron";
import { MANAGED_K3S_FLAGS } from "../lib/k3s-flags";
import { SERVICE_ACCESS_KEY_IDS } from "../lib/access-keys";
import { TLS_ISSUERS } from "../lib/kube";
import { meshCollisions } from "../lib/mesh-addresses";

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const fqdn = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

const hostAddress = z.string().refine((v) => isIP(v) !== 0 || fqdn.test(v), {
    error: "expected an IP address or a DNS name",
});
const cidr = z.string().refine((v) => parseCidr(v) !== undefined, {
    error: "expected a CIDR such as 203.0.113.0/24 or 2001:db8::/48",
});
const ipv4Cidr = z.string().refine((v) => parseCidr(v)?.family === 4, {
    error: "expected an IPv4 CIDR such as 10.99.0.0/16",
});
const nodeName = z.string().regex(dnsLabel, { error: "expected a DNS label: a-z, 0-9 and '-', at most 63 characters" });
const port = z.int().min(1).max(65535);

export const hetznerLocations = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"] as const;

function oddServersMessage(): string {
    return "needs an odd number of servers (1, 3, 5 or 7) so etcd keeps quorum";
}

// The last `leaving` of a role's nodes are on their way out: step one of scaling down (see the README).
const leavingCount = z.int().min(0).default(0);

const hetznerNodes = z.strictObject({
    provider: z.literal("hetzner"),
    locations: z
        .array(z.enum(hetznerLocations))
        .min(1)
        .refine((l) => new Set(l).size === l.length, { error: "locations must not repeat" })
        .default(["fsn1"]),
    networkZone: z.enum(["eu-central", "us-east", "us-west", "ap-southeast"]).default("eu-central"),
    image: z.string().min(1).default("debian-12"),
    servers: z
        .strictObject({
            count: z.int().min(1).max(7).default(1),
            serverType: z
                .string()
                .regex(/^[a-z]+\d+[a-z]*$/, { error: "expected a Hetzner server type such as cx32" })
                .default("cx32"),
            leaving: leavingCount,
        })
        .refine((s) => s.leaving < s.count, {
            path: ["leaving"],
            error: "must leave at least the first server, which bootstrapped etcd",
        })
        .refine((s) => (s.count - s.leaving) % 2 === 1, { path: ["count"], error: oddServersMessage })
        .prefault({}),
    agents: z
        .strictObject({
            count: z.int().min(0).max(50).default(0),
            serverType: z
                .string()
                .regex(/^[a-z]+\d+[a-z]*$/, { error: "expected a Hetzner server type such as cx22" })
                .default("cx22"),
            leaving: leavingCount,
        })
        .refine((a) => a.leaving <= a.count, { path: ["leaving"], error: "must not exceed agents.count" })
        .prefault({}),
});

const bareMetalHost = z.strictObject({
    name: nodeName,
    address: hostAddress,
    user: z
        .string()
        .regex(/^[a-z_][a-z0-9_-]*$/, { error: "expected a Unix user name" })
        .default("root"),
    port: port.default(22),
    role: z.enum(["server", "agent"]).default("server"),
    // Step one of removing a host: drained and taken out of K3s while the mesh still reaches it.
    leaving: z.boolean().default(false),
});

const bareMetalNodes = z.strictObject({
    provider: z.literal("bare-metal"),
    hosts: z
        .array(bareMetalHost)
        .min(1, { error: "list at least one host" })
        .superRefine((hosts, ctx) => {
            for (const field of ["name", "address"] as const) {
                const seen = new Set<string>();
                hosts.forEach((h, i) => {
                    if (seen.has(h[field])) {
                        ctx.addIssue({ code: "custom", path: [i, field], message: `duplicate ${field} '${h[field]}'` });
                    }
                    seen.add(h[field]);
                });
            }
            const firstServer = hosts.findIndex((h) => h.role === "server");
            if (firstServer >= 0 && hosts[firstServer].leaving) {
                ctx.addIssue({
                    code: "custom",
                    path: [firstServer, "leaving"],
                    message: "the first server bootstrapped etcd and cannot leave",
                });
            }
            const servers = hosts.filter((h) => h.role === "server" && !h.leaving).length;
            if (servers === 0) ctx.addIssue({ code: "custom", message: "needs at least one host with role 'server'" });
            else if (servers % 2 === 0)
                ctx.addIssue({ code: "custom", message: `${oddServersMessage()}, got ${servers}` });
        }),
});

const nodes = z.discriminatedUnion("provider", [hetznerNodes, bareMetalNodes], {
    error: (issue) => (issue.input === undefined ? "is required" : "expected provider 'hetzner' or 'bare-metal'"),
});

const mesh = z.strictObject({
    cidr: ipv4Cidr.default("10.99.0.0/16"),
    port: port.default(51820),
});

const extraK3sArgs = z
    .array(
        z
            .string()
            .regex(/^--[a-z0-9-]+(=.*)?$/, { error: "expected a flag such as --foo=bar" })
            .refine((arg) => !MANAGED_K3S_FLAGS.includes(arg.slice(2).split("=")[0]), {
                error: "is set by the program from the mesh and the other k3s settings; change those instead",
            }),
    )
    .default([]);

const k3s = z.strictObject({
    // Off only where K3s cannot run (test hosts): the layer then stops after the mesh.
    enabled: z.boolean().default(true),
    version: z
        .string()
        .regex(/^v\d+\.\d+\.\d+\+k3s\d+$/, { error: "expected a pinned K3s release such as v1.33.5+k3s1" })
        .default("v1.33.5+k3s1"),
    clusterCidr: ipv4Cidr.default("10.42.0.0/16"),
    serviceCidr: ipv4Cidr.default("10.43.0.0/16"),
    secretsEncryption: z.boolean().default(true),
    extraServerArgs: extraK3sArgs,
    extraAgentArgs: extraK3sArgs,
    // Air-gapped install: a folder on every node holding the release's k3s binary, install.sh and image archive.
    airgapDir: z
        .string()
        .regex(/^\/[A-Za-z0-9._/-]*$/, { error: "expected an absolute path on the nodes, such as /opt/k3s" })
        .optional(),
});

const vault = z
    .strictObject({
        keyShares: z.int().min(1).max(10).default(5),
        keyThreshold: z.int().min(1).max(10).default(3),
    })
    .refine((v) => v.keyThreshold <= v.keyShares, {
        path: ["keyThreshold"],
        error: "must not exceed vault.keyShares",
    });

// The in-cluster backend (SeaweedFS), or a third-party S3 provider whose credentials are stack secrets.
// MinIO's community edition is no longer maintained (README, "Storage backend"): a stack still naming it is told so.
const storage = z.discriminatedUnion(
    "backend",
    [
        z.strictObject({
            backend: z.literal("seaweedfs"),
            // Each volume server's persistent volume (K3s's local-path storage on its node).
            size: z
                .string()
                .regex(/^\d+(Mi|Gi|Ti)$/, { error: "expected a size such as 50Gi" })
                .default("50Gi"),
        }),
        z.strictObject({
            backend: z.literal("external"),
            endpoint: z.url({
                protocol: /^https$/,
                error: (issue) => (issue.input === undefined ? "is required" : "expected an https:// URL"),
            }),
            region: z
                .string()
                .regex(/^[a-z0-9-]+$/, { error: "expected a region such as eu-central-1" })
                .default("us-east-1"),
        }),
    ],
    {
        error: (issue) =>
            (issue.input as { backend?: unknown } | undefined)?.backend === "minio"
                ? "backend 'minio' is no longer offered (MinIO's community edition is unmaintained): use 'seaweedfs'"
                : "expected backend 'seaweedfs' or 'external'",
    },
);

/** Five cron fields (minute hour day month weekday), as K3s and Kubernetes CronJobs read them. */
const cron = z.string().regex(/^(\S+\s+){4}\S+$/, { error: "expected a cron schedule such as '0 */6 * * *'" });

// Where backups go: an S3 bucket outside the cluster, whose credentials are stack secrets. Without a target,
// K3s keeps its etcd snapshots on the servers' own disks: that protects against mistakes, not a lost cluster.
const backup = z.strictObject({
    target: z
        .strictObject({
            endpoint: z.url({
                protocol: /^https$/,
                error: (issue) => (issue.input === undefined ? "is required" : "expected an https:// URL"),
            }),
            bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: "expected an S3 bucket name" }),
            region: z
                .string()
                .regex(/^[a-z0-9-]+$/, { error: "expected a region such as eu-central-1" })
                .default("us-east-1"),
        })
        .optional(),
    etcd: z
        .strictObject({ schedule: cron.default("0 */6 * * *"), retention: z.int().min(1).max(500).default(28) })
        .prefault({}),
    // Vault's raft snapshots (the vault-backup CronJob): half an hour after etcd's default, so they do not collide.
    vault: z
        .strictObject({
            schedule: z
                .string()
                .refine((s) => longestIntervalSeconds(s) !== undefined, {
                    error: "expected a cron schedule of numbers, '*', ranges, steps and lists, such as '30 */6 * * *'",
                })
                .default("30 */6 * * *"),
            keep: z.int().min(1).max(1000).default(14),
        })
        .prefault({}),
});

/** A container image pinned by digest: `<repository>@sha256:<64 hex>`; a tag alone may move. */
export const DIGEST_PINNED_IMAGE =
    /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+@sha256:[0-9a-f]{64}$/;
const digestPinnedImage = z.string().regex(DIGEST_PINNED_IMAGE, {
    error: "expected an image pinned by digest: <repository>@sha256:<64 hex digits>",
});

const apps = z.strictObject({
    // The services' images (and the backup layer's vault-backup job's); without them, the published images of
    // this release (components/apps/versions.ts).
    images: z
        .strictObject({
            storageS3Api: digestPinnedImage.optional(),
            storageKvApi: digestPinnedImage.optional(),
            vaultBackup: digestPinnedImage.optional(),
        })
        .prefault({}),
});

// Access key ids are member names; the services' own are reserved.
const RESERVED_MEMBER_NAMES: readonly string[] = Object.values(SERVICE_ACCESS_KEY_IDS);
const members = z
    .array(
        z
            .string()
            .regex(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/, {
                error: "expected a member name: 2-32 characters of a-z, 0-9 and '-', starting with a letter",
            })
            .refine((m) => !RESERVED_MEMBER_NAMES.includes(m), {
                error: `is reserved (${RESERVED_MEMBER_NAMES.join(", ")})`,
            }),
    )
    .superRefine((names, ctx) => {
        const seen = new Set<string>();
        names.forEach((n, i) => {
            if (seen.has(n)) ctx.addIssue({ code: "custom", path: [i], message: `duplicate member '${n}'` });
            seen.add(n);
        });
    })
    .default([]);

const device = z.strictObject({
    name: nodeName,
    owner: z.string().min(1),
    // A WireGuard public key: 32 bytes, base64. The device made its private key itself.
    publicKey: z.string().regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, {
        error: "expected a WireGuard public key (44 base64 characters)",
    }),
});

/** Every non-secret setting, keyed by its name under the project's config namespace. */
export const settingsSchema = z
    .strictObject({
        nodes: nodes,
        domain: z.string().regex(fqdn, { error: "expected a DNS name such as cloud.example.org" }).optional(),
        acmeEmail: z.email({ error: "expected an e-mail address" }).optional(),
        // The ClusterIssuer the apps' ingress certificates use; without it, Let's Encrypt when acmeEmail is set.
        tlsIssuer: z.enum(TLS_ISSUERS, { error: `expected one of ${TLS_ISSUERS.join(", ")}` }).optional(),
        adminCidrs: z.array(cidr).default([]),
        // The public half of peoples-cloud:sshPrivateKey, for Hetzner to install on new servers.
        sshPublicKey: z
            .string()
            .regex(/^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$/, {
                error: "expected an OpenSSH public key line such as 'ssh-ed25519 AAAA... admin'",
            })
            .optional(),
        mesh: mesh.prefault({}),
        k3s: k3s.prefault({}),
        vault: vault.prefault({}),
        storage: storage.default({ backend: "seaweedfs", size: "50Gi" }),
        // The family's members: each gets an S3 access key and a token for the document store.
        members,
        apps: apps.prefault({}),
        backup: backup.prefault({}),
        devices: z
            .array(device)
            .superRefine((devices, ctx) => {
                const names = new Set<string>();
                devices.forEach((d, i) => {
                    if (names.has(d.name)) {
                        ctx.addIssue({
                            code: "custom",
                            path: [i, "name"],
                            message: `duplicate device name '${d.name}'`,
                        });
                    }
                    names.add(d.name);
                });
            })
            .default([]),
    })
    .superRefine((s, ctx) => {
        const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
        if (s.nodes.provider === "hetzner" && s.adminCidrs.length === 0) {
            issue(
                ["adminCidrs"],
                "list the CIDRs Pulumi and admins reach the nodes' SSH from (Hetzner nodes get a firewall)",
            );
        }
        if (s.tlsIssuer?.startsWith("letsencrypt") && !s.acmeEmail) {
            issue(
                ["acmeEmail"],
                `is required for tlsIssuer '${s.tlsIssuer}': Let's Encrypt needs an address for its notices`,
            );
        }
        const firstServer =
            s.nodes.provider === "bare-metal" ? s.nodes.hosts.find((h) => h.role === "server") : undefined;
        if (s.k3s.enabled && !s.domain && firstServer && isIP(firstServer.address) === 0) {
            issue(
                ["domain"],
                `is required: the ingress address '${firstServer.address}' is a DNS name, so no wildcard name can be derived from it`,
            );
        }
        const nets = {
            "mesh.cidr": s.mesh.cidr,
            "k3s.clusterCidr": s.k3s.clusterCidr,
            "k3s.serviceCidr": s.k3s.serviceCidr,
        };
        const entries = Object.entries(nets);
        for (let i = 0; i < entries.length; i++) {
            for (let j = i + 1; j < entries.length; j++) {
                if (cidrsOverlap(entries[i][1], entries[j][1])) {
                    issue(entries[j][0].split("."), `overlaps ${entries[i][0]} (${entries[i][1]})`);
                }
            }
        }
        const members: { name: string; path: (string | number)[] }[] =
            s.nodes.provider === "hetzner"
                ? [
                      ...Array.from({ length: s.nodes.servers.count }, (_, i) => ({
                          name: `server-${i + 1}`,
                          path: ["nodes", "servers", "count"],
                      })),
                      ...Array.from({ length: s.nodes.agents.count }, (_, i) => ({
                          name: `agent-${i + 1}`,
                          path: ["nodes", "agents", "count"],
                      })),
                  ]
                : s.nodes.hosts.map((h, i) => ({ name: h.name, path: ["nodes", "hosts", i, "name"] }));
        members.push(...s.devices.map((d, i) => ({ name: d.name, path: ["devices", i, "name"] })));
        if ((parseCidr(s.mesh.cidr)?.prefix ?? 32) <= 30) {
            for (const c of meshCollisions(
                members.map((m) => m.name),
                s.mesh.cidr,
            )) {
                const at = members.find((m) => m.name === c.name)?.path ?? ["mesh", "cidr"];
                issue(
                    at,
                    `'${c.name}' gets the same mesh address as '${c.other}' (${c.address}); rename one or widen mesh.cidr`,
                );
            }
        }
        const keys = new Map<string, string>();
        s.devices.forEach((d, i) => {
            if (!s.members.includes(d.owner)) {
                issue(
                    ["devices", i, "owner"],
                    `'${d.owner}' is not one of the members (${s.members.join(", ") || "none yet"})`,
                );
            }
            const other = keys.get(d.publicKey);
            if (other)
                issue(["devices", i, "publicKey"], `is the public key of '${other}' too; each device makes its own`);
            keys.set(d.publicKey, d.name);
        });
        const meshSize = 2 ** (32 - (parseCidr(s.mesh.cidr)?.prefix ?? 32)) - 2;
        const nodeCount =
            s.nodes.provider === "hetzner" ? s.nodes.servers.count + s.nodes.agents.count : s.nodes.hosts.length;
        if (nodeCount + s.devices.length > meshSize) {
            issue(
                ["mesh", "cidr"],
                `has ${meshSize} addresses, too few for ${nodeCount} nodes and ${s.devices.length} devices`,
            );
        }
    });

export type Settings = z.output<typeof settingsSchema>;
export type NodesSettings = Settings["nodes"];
export type BareMetalHost = z.output<typeof bareMetalHost>;
export type K3sSettings = Settings["k3s"];
export type StorageSettings = Settings["storage"];
export type BackupSettings = Settings["backup"];
