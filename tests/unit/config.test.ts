import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, readRawConfig, validateConfig, type Validation } from "../../stacks/config";
import { isEncrypted, rawConfig, readStackFile, stackFileValues } from "../helpers/stackConfig";

const ns = "peoples-cloud";
const sshKey = { [`${ns}:sshPrivateKey`]: "-----BEGIN OPENSSH PRIVATE KEY-----\ntest-only\n" };
const hcloudToken = { "hcloud:token": "test-only-hcloud-token-value" };

const bareMetal = (hosts: unknown[] = [{ name: "node-1", address: "192.0.2.11" }]) => ({
    [`${ns}:nodes`]: { provider: "bare-metal", hosts },
});
const hetzner = (nodes: Record<string, unknown> = {}) => ({
    [`${ns}:nodes`]: { provider: "hetzner", ...nodes },
    [`${ns}:adminCidrs`]: ["203.0.113.0/24"],
});

function problemsOf(result: Validation): string[] {
    assert.equal(result.ok, false, "expected the config to be rejected");
    return result.ok ? [] : result.problems;
}

interface InvalidCase {
    name: string;
    plain: Record<string, unknown>;
    secrets?: Record<string, string>;
    /** The full config key path the message must start with, and a fragment of what it says is wrong. */
    key: string;
    says: string | RegExp;
}

const invalid: InvalidCase[] = [
    { name: "no nodes at all", plain: {}, secrets: sshKey, key: `${ns}:nodes`, says: "is required" },
    {
        name: "unknown node provider",
        plain: { [`${ns}:nodes`]: { provider: "aws" } },
        key: `${ns}:nodes.provider`,
        says: "expected provider 'hetzner' or 'bare-metal'",
    },
    { name: "nodes given as text", plain: { [`${ns}:nodes`]: "three" }, key: `${ns}:nodes`, says: 'got "three"' },
    {
        name: "no bare-metal hosts",
        plain: bareMetal([]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts`,
        says: "at least one host",
    },
    {
        name: "host name not a DNS label",
        plain: bareMetal([{ name: "Node_1", address: "192.0.2.11" }]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[0].name`,
        says: "DNS label",
    },
    {
        name: "host address neither IP nor name",
        plain: bareMetal([{ name: "node-1", address: "300.1.1.1" }]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[0].address`,
        says: "IP address or a DNS name",
    },
    {
        name: "SSH port out of range",
        plain: bareMetal([{ name: "node-1", address: "192.0.2.11", port: 0 }]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[0].port`,
        says: ">=1",
    },
    {
        name: "SSH port as a string",
        plain: bareMetal([{ name: "node-1", address: "192.0.2.11", port: "22" }]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[0].port`,
        says: "expected number",
    },
    {
        name: "unknown host role",
        plain: bareMetal([{ name: "node-1", address: "192.0.2.11", role: "master" }]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[0].role`,
        says: '"server"|"agent"',
    },
    {
        name: "SSH user not a Unix name",
        plain: bareMetal([{ name: "node-1", address: "192.0.2.11", user: "Root!" }]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[0].user`,
        says: "Unix user name",
    },
    {
        name: "misspelt host setting",
        plain: bareMetal([{ name: "node-1", adress: "192.0.2.11", address: "192.0.2.11" }]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[0].adress`,
        says: "unknown setting",
    },
    {
        name: "duplicate host names",
        plain: bareMetal([
            { name: "node-1", address: "192.0.2.11" },
            { name: "node-1", address: "192.0.2.12", role: "agent" },
        ]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[1].name`,
        says: "duplicate name",
    },
    {
        name: "duplicate host addresses",
        plain: bareMetal([
            { name: "node-1", address: "192.0.2.11" },
            { name: "node-2", address: "192.0.2.11", role: "agent" },
        ]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[1].address`,
        says: "duplicate address",
    },
    {
        name: "even number of servers",
        plain: bareMetal([
            { name: "node-1", address: "192.0.2.11" },
            { name: "node-2", address: "192.0.2.12" },
        ]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts`,
        says: "odd number of servers",
    },
    {
        name: "agents only",
        plain: bareMetal([{ name: "node-1", address: "192.0.2.11", role: "agent" }]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts`,
        says: "role 'server'",
    },
    {
        name: "unknown Hetzner location",
        plain: hetzner({ locations: ["mars1"] }),
        secrets: hcloudToken,
        key: `${ns}:nodes.locations[0]`,
        says: "fsn1",
    },
    {
        name: "repeated Hetzner location",
        plain: hetzner({ locations: ["fsn1", "fsn1"] }),
        secrets: hcloudToken,
        key: `${ns}:nodes.locations`,
        says: "must not repeat",
    },
    {
        name: "even Hetzner server count",
        plain: hetzner({ servers: { count: 2 } }),
        secrets: hcloudToken,
        key: `${ns}:nodes.servers.count`,
        says: "odd number of servers",
    },
    {
        name: "negative agent count",
        plain: hetzner({ agents: { count: -1 } }),
        secrets: hcloudToken,
        key: `${ns}:nodes.agents.count`,
        says: ">=0",
    },
    {
        name: "malformed server type",
        plain: hetzner({ servers: { serverType: "CX 22" } }),
        secrets: hcloudToken,
        key: `${ns}:nodes.servers.serverType`,
        says: "Hetzner server type",
    },
    {
        name: "Hetzner without admin CIDRs",
        plain: { [`${ns}:nodes`]: { provider: "hetzner" } },
        secrets: hcloudToken,
        key: `${ns}:adminCidrs`,
        says: "SSH",
    },
    {
        name: "admin CIDR with a bad prefix",
        plain: { ...hetzner(), [`${ns}:adminCidrs`]: ["10.0.0.0/33"] },
        secrets: hcloudToken,
        key: `${ns}:adminCidrs[0]`,
        says: "CIDR",
    },
    {
        name: "domain with a space",
        plain: { ...bareMetal(), [`${ns}:domain`]: "my cloud.org" },
        secrets: sshKey,
        key: `${ns}:domain`,
        says: "DNS name",
    },
    {
        name: "ACME e-mail without @",
        plain: { ...bareMetal(), [`${ns}:acmeEmail`]: "admin.example.org" },
        secrets: sshKey,
        key: `${ns}:acmeEmail`,
        says: "e-mail",
    },
    {
        name: "the first server leaving",
        plain: bareMetal([
            { name: "node-1", address: "192.0.2.11", leaving: true },
            { name: "node-2", address: "192.0.2.12" },
        ]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts[0].leaving`,
        says: "cannot leave",
    },
    {
        name: "a server leaving three, so two would stay",
        plain: bareMetal([
            { name: "node-1", address: "192.0.2.11" },
            { name: "node-2", address: "192.0.2.12" },
            { name: "node-3", address: "192.0.2.13", leaving: true },
        ]),
        secrets: sshKey,
        key: `${ns}:nodes.hosts`,
        says: "odd number of servers (1, 3, 5 or 7) so etcd keeps quorum, got 2",
    },
    {
        name: "every Hetzner server leaving",
        plain: hetzner({ servers: { count: 3, leaving: 3 } }),
        secrets: hcloudToken,
        key: `${ns}:nodes.servers.leaving`,
        says: "the first server",
    },
    {
        name: "more Hetzner agents leaving than there are",
        plain: hetzner({ agents: { count: 1, leaving: 2 } }),
        secrets: hcloudToken,
        key: `${ns}:nodes.agents.leaving`,
        says: "must not exceed agents.count",
    },
    {
        name: "unknown TLS issuer",
        plain: { ...bareMetal(), [`${ns}:tlsIssuer`]: "zerossl" },
        secrets: sshKey,
        key: `${ns}:tlsIssuer`,
        says: "letsencrypt, letsencrypt-staging, internal-ca",
    },
    {
        name: "Let's Encrypt issuer without an ACME e-mail",
        plain: { ...bareMetal(), [`${ns}:tlsIssuer`]: "letsencrypt-staging" },
        secrets: sshKey,
        key: `${ns}:acmeEmail`,
        says: "required for tlsIssuer 'letsencrypt-staging'",
    },
    {
        name: "no domain, and a first server reached by name",
        plain: { [`${ns}:nodes`]: { provider: "bare-metal", hosts: [{ name: "n1", address: "n1.example.org" }] } },
        secrets: sshKey,
        key: `${ns}:domain`,
        says: "is a DNS name",
    },
    {
        name: "IPv6 mesh CIDR",
        plain: { ...bareMetal(), [`${ns}:mesh`]: { cidr: "fd00::/64" } },
        secrets: sshKey,
        key: `${ns}:mesh.cidr`,
        says: "IPv4 CIDR",
    },
    {
        name: "mesh overlapping the pod network",
        plain: { ...bareMetal(), [`${ns}:mesh`]: { cidr: "10.42.7.0/24" } },
        secrets: sshKey,
        key: `${ns}:k3s.clusterCidr`,
        says: "overlaps mesh.cidr",
    },
    {
        name: "mesh too small for nodes and devices",
        plain: {
            ...bareMetal(),
            [`${ns}:mesh`]: { cidr: "10.99.0.0/30" },
            [`${ns}:devices`]: [
                { name: "phone", owner: "ana", publicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" },
                { name: "laptop", owner: "ana", publicKey: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=" },
            ],
        },
        secrets: sshKey,
        key: `${ns}:mesh.cidr`,
        says: "too few for 1 nodes and 2 devices",
    },
    {
        name: "WireGuard port out of range",
        plain: { ...bareMetal(), [`${ns}:mesh`]: { port: 70000 } },
        secrets: sshKey,
        key: `${ns}:mesh.port`,
        says: "<=65535",
    },
    {
        name: "unpinned K3s version",
        plain: { ...bareMetal(), [`${ns}:k3s`]: { version: "latest" } },
        secrets: sshKey,
        key: `${ns}:k3s.version`,
        says: "pinned K3s release",
    },
    {
        name: "K3s extra argument that is not a flag",
        plain: { ...bareMetal(), [`${ns}:k3s`]: { extraServerArgs: ["disable traefik"] } },
        secrets: sshKey,
        key: `${ns}:k3s.extraServerArgs[0]`,
        says: "flag",
    },
    {
        name: "K3s extra argument the program sets itself",
        plain: { ...bareMetal(), [`${ns}:k3s`]: { extraAgentArgs: ["--node-ip=192.0.2.1"] } },
        secrets: sshKey,
        key: `${ns}:k3s.extraAgentArgs[0]`,
        says: "set by the program",
    },
    {
        name: "relative air-gap directory",
        plain: { ...bareMetal(), [`${ns}:k3s`]: { airgapDir: "k3s-files" } },
        secrets: sshKey,
        key: `${ns}:k3s.airgapDir`,
        says: "absolute path",
    },
    {
        name: "K3s switch that is not a boolean",
        plain: { ...bareMetal(), [`${ns}:k3s`]: { enabled: "no" } },
        secrets: sshKey,
        key: `${ns}:k3s.enabled`,
        says: "boolean",
    },
    {
        name: "SSH public key that is not an OpenSSH line",
        plain: { ...bareMetal(), [`${ns}:sshPublicKey`]: "AAAAC3NzaC1lZDI1NTE5" },
        secrets: sshKey,
        key: `${ns}:sshPublicKey`,
        says: "OpenSSH public key line",
    },
    {
        name: "Vault threshold above shares",
        plain: { ...bareMetal(), [`${ns}:vault`]: { keyShares: 3, keyThreshold: 4 } },
        secrets: sshKey,
        key: `${ns}:vault.keyThreshold`,
        says: "must not exceed vault.keyShares",
    },
    {
        name: "zero Vault key shares",
        plain: { ...bareMetal(), [`${ns}:vault`]: { keyShares: 0, keyThreshold: 0 } },
        secrets: sshKey,
        key: `${ns}:vault.keyShares`,
        says: ">=1",
    },
    {
        name: "unknown storage backend",
        plain: { ...bareMetal(), [`${ns}:storage`]: { backend: "s3" } },
        secrets: sshKey,
        key: `${ns}:storage.backend`,
        says: "expected backend 'seaweedfs' or 'external'",
    },
    {
        name: "the MinIO backend of earlier configs",
        plain: { ...bareMetal(), [`${ns}:storage`]: { backend: "minio", size: "50Gi", bucket: "family" } },
        secrets: sshKey,
        key: `${ns}:storage.backend`,
        says: "backend 'minio' is no longer offered",
    },
    {
        name: "SeaweedFS volume size without a unit",
        plain: { ...bareMetal(), [`${ns}:storage`]: { backend: "seaweedfs", size: "50" } },
        secrets: sshKey,
        key: `${ns}:storage.size`,
        says: "expected a size such as 50Gi",
    },
    {
        name: "a member name that is not a DNS label",
        plain: { ...bareMetal(), [`${ns}:members`]: ["Ana Maria"] },
        secrets: sshKey,
        key: `${ns}:members[0]`,
        says: "expected a member name",
    },
    {
        name: "a member twice",
        plain: { ...bareMetal(), [`${ns}:members`]: ["ana", "ana"] },
        secrets: sshKey,
        key: `${ns}:members[1]`,
        says: "duplicate member 'ana'",
    },
    {
        name: "a member named like a service's own access key",
        plain: { ...bareMetal(), [`${ns}:members`]: ["storage-kv-api"] },
        secrets: sshKey,
        key: `${ns}:members[0]`,
        says: "is reserved",
    },
    {
        name: "a service image pinned by tag only",
        plain: {
            ...bareMetal(),
            [`${ns}:apps`]: { images: { storageS3Api: "ghcr.io/family/peoples-cloud-storage-s3-api:1.0.0" } },
        },
        secrets: sshKey,
        key: `${ns}:apps.images.storageS3Api`,
        says: "expected an image pinned by digest",
    },
    {
        name: "a service image with a short digest",
        plain: {
            ...bareMetal(),
            [`${ns}:apps`]: { images: { storageKvApi: "ghcr.io/family/peoples-cloud-storage-kv-api@sha256:abc" } },
        },
        secrets: sshKey,
        key: `${ns}:apps.images.storageKvApi`,
        says: "expected an image pinned by digest",
    },
    {
        name: "vault-backup's image pinned by tag only",
        plain: { ...bareMetal(), [`${ns}:apps`]: { images: { vaultBackup: "ghcr.io/family/vault-backup:1.0.0" } } },
        secrets: sshKey,
        key: `${ns}:apps.images.vaultBackup`,
        says: "expected an image pinned by digest",
    },
    {
        name: "a Vault backup schedule that is not five cron fields",
        plain: { ...bareMetal(), [`${ns}:backup`]: { vault: { schedule: "every 6 hours" } } },
        secrets: sshKey,
        key: `${ns}:backup.vault.schedule`,
        says: "expected a cron schedule",
    },
    {
        name: "a Vault backup schedule with names, which the alerts cannot read",
        plain: { ...bareMetal(), [`${ns}:backup`]: { vault: { schedule: "0 3 * * MON" } } },
        secrets: sshKey,
        key: `${ns}:backup.vault.schedule`,
        says: "expected a cron schedule",
    },
    {
        name: "a Vault backup schedule that never runs twice (the 31st of February)",
        plain: { ...bareMetal(), [`${ns}:backup`]: { vault: { schedule: "0 0 31 2 *" } } },
        secrets: sshKey,
        key: `${ns}:backup.vault.schedule`,
        says: "expected a cron schedule",
    },
    {
        name: "no Vault backup kept",
        plain: { ...bareMetal(), [`${ns}:backup`]: { vault: { keep: 0 } } },
        secrets: sshKey,
        key: `${ns}:backup.vault.keep`,
        says: ">=1",
    },
    {
        name: "external S3 over plain HTTP",
        plain: {
            ...bareMetal(),
            [`${ns}:storage`]: { backend: "external", endpoint: "http://s3.example.org" },
        },
        secrets: { ...sshKey, [`${ns}:s3AccessKeyId`]: "id", [`${ns}:s3SecretAccessKey`]: "secret" },
        key: `${ns}:storage.endpoint`,
        says: "https://",
    },
    {
        name: "external S3 without an endpoint",
        plain: { ...bareMetal(), [`${ns}:storage`]: { backend: "external", region: "eu-central-1" } },
        secrets: { ...sshKey, [`${ns}:s3AccessKeyId`]: "id", [`${ns}:s3SecretAccessKey`]: "secret" },
        key: `${ns}:storage.endpoint`,
        says: "is required",
    },
    {
        name: "external S3 without credentials",
        plain: {
            ...bareMetal(),
            [`${ns}:storage`]: { backend: "external", endpoint: "https://s3.example.org" },
        },
        secrets: sshKey,
        key: `${ns}:s3AccessKeyId`,
        says: "pulumi config set --secret peoples-cloud:s3AccessKeyId",
    },
    {
        name: "device with a malformed public key",
        plain: { ...bareMetal(), [`${ns}:devices`]: [{ name: "phone", owner: "ana", publicKey: "not-a-key" }] },
        secrets: sshKey,
        key: `${ns}:devices[0].publicKey`,
        says: "WireGuard public key",
    },
    {
        name: "duplicate device names",
        plain: {
            ...bareMetal(),
            [`${ns}:devices`]: [
                { name: "phone", owner: "ana", publicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" },
                { name: "phone", owner: "ben", publicKey: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=" },
            ],
        },
        secrets: sshKey,
        key: `${ns}:devices[1].name`,
        says: "duplicate device name",
    },
    {
        name: "device of someone who is not a member",
        plain: {
            ...bareMetal(),
            [`${ns}:members`]: ["ana"],
            [`${ns}:devices`]: [
                { name: "phone", owner: "zoe", publicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" },
            ],
        },
        secrets: sshKey,
        key: `${ns}:devices[0].owner`,
        says: "'zoe' is not one of the members (ana)",
    },
    {
        name: "two devices with one public key",
        plain: {
            ...bareMetal(),
            [`${ns}:members`]: ["ana"],
            [`${ns}:devices`]: [
                { name: "phone", owner: "ana", publicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" },
                { name: "laptop", owner: "ana", publicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" },
            ],
        },
        secrets: sshKey,
        key: `${ns}:devices[1].publicKey`,
        says: "is the public key of 'phone' too",
    },
    {
        name: "misspelt top-level setting",
        plain: { ...bareMetal(), [`${ns}:domian`]: "cloud.example.org" },
        secrets: sshKey,
        key: `${ns}:domian`,
        says: "unknown setting",
    },
    {
        name: "SSH private key in plain text",
        plain: { ...bareMetal(), ...sshKey },
        key: `${ns}:sshPrivateKey`,
        says: "pulumi config set --secret peoples-cloud:sshPrivateKey",
    },
    {
        name: "bare metal without an SSH key",
        plain: bareMetal(),
        key: `${ns}:sshPrivateKey`,
        says: "is required",
    },
    {
        name: "Hetzner without an API token",
        plain: hetzner(),
        key: "hcloud:token",
        says: "pulumi config set --secret hcloud:token",
    },
    {
        name: "Hetzner API token in plain text",
        plain: { ...hetzner(), ...hcloudToken },
        key: "hcloud:token",
        says: "stored in plain text",
    },
    {
        name: "plain setting stored as a secret",
        plain: bareMetal(),
        secrets: { ...sshKey, [`${ns}:domain`]: "cloud.example.org" },
        key: `${ns}:domain`,
        says: "not a secret",
    },
];

describe("stack config", () => {
    describe("rejects invalid configs, naming the key", () => {
        for (const c of invalid) {
            it(c.name, () => {
                const problems = problemsOf(validateConfig(rawConfig(c.plain, c.secrets)));
                const hit = problems.find((p) => p.startsWith(`${c.key}:`));
                assert.ok(hit, `no problem names ${c.key}; got:\n${problems.join("\n")}`);
                if (typeof c.says === "string") assert.ok(hit.includes(c.says), `"${hit}" does not say "${c.says}"`);
                else assert.match(hit, c.says);
            });
        }
        it("covers at least 25 distinct invalid configs", () => {
            assert.ok(new Set(invalid.map((c) => c.key)).size >= 25);
        });
    });

    it("takes the Hetzner token from HCLOUD_TOKEN when the stack holds none, as a secret (a pipeline's way)", async () => {
        pulumi.runtime.setAllConfig(rawConfig(hetzner()).values, []);
        assert.deepEqual(problemsOf(validateConfig(readRawConfig({}))), [
            "hcloud:token: is required for this setup; set it with: pulumi config set --secret hcloud:token <API token> (a pipeline: HCLOUD_TOKEN)",
        ]);
        const raw = readRawConfig({ HCLOUD_TOKEN: "token-from-the-environment" });
        assert.equal(validateConfig(raw).ok, true);
        const token = loadConfig(raw).secrets.hcloudToken!;
        assert.equal(await pulumi.isSecret(token), true);
        pulumi.runtime.setAllConfig({}, []);
    });

    it("reports every problem at once", () => {
        const problems = problemsOf(
            validateConfig(
                rawConfig({
                    ...bareMetal([{ name: "Node_1", address: "192.0.2.11", port: 0 }]),
                    [`${ns}:vault`]: { keyShares: 2, keyThreshold: 3 },
                    [`${ns}:domian`]: "x",
                }),
            ),
        );
        const keys = problems.map((p) => p.split(": ")[0]).sort();
        assert.deepEqual(keys, [
            `${ns}:domian`,
            `${ns}:nodes.hosts[0].name`,
            `${ns}:nodes.hosts[0].port`,
            `${ns}:sshPrivateKey`,
            `${ns}:vault.keyThreshold`,
        ]);
    });

    it("never quotes a secret's value back", () => {
        const token = "super-secret-token-4711";
        const problems = problemsOf(
            validateConfig(rawConfig({ ...hetzner({ servers: { count: 2 } }), "hcloud:token": token })),
        );
        assert.ok(problems.length >= 2);
        for (const p of problems) assert.ok(!p.includes(token), `secret leaked in: ${p}`);
    });

    describe("accepts", () => {
        for (const stack of ["dev", "prod"]) {
            it(`the ${stack} stack file with its secrets`, () => {
                const secrets = stack === "dev" ? sshKey : hcloudToken;
                const result = validateConfig(rawConfig(stackFileValues(stack), secrets));
                assert.deepEqual(result.ok ? [] : result.problems, []);
            });
        }

        it("the prod stack spreads three control-plane nodes over two locations", () => {
            const result = validateConfig(rawConfig(stackFileValues("prod"), hcloudToken));
            assert.ok(result.ok && result.settings.nodes.provider === "hetzner");
            assert.equal(result.settings.nodes.servers.count, 3);
            assert.ok(result.settings.nodes.locations.length >= 2);
            assert.ok(result.settings.nodes.agents.count > 0);
        });

        it("the stack files hold no secret in plain text", () => {
            for (const stack of ["dev", "prod"]) {
                const plain = Object.entries(readStackFile(stack).config ?? {}).filter(
                    ([k, v]) => /token|key|secret|password/i.test(k) && !isEncrypted(v),
                );
                assert.deepEqual(plain, [], `Pulumi.${stack}.yaml holds a secret in plain text`);
            }
        });

        it("a minimal bare-metal config, with documented defaults", () => {
            const result = validateConfig(rawConfig(bareMetal(), sshKey));
            assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
            const s = result.settings;
            assert.deepEqual(s.nodes, {
                provider: "bare-metal",
                hosts: [
                    { name: "node-1", address: "192.0.2.11", user: "root", port: 22, role: "server", leaving: false },
                ],
            });
            assert.deepEqual(s.mesh, { cidr: "10.99.0.0/16", port: 51820 });
            assert.deepEqual(s.k3s, {
                enabled: true,
                version: "v1.33.5+k3s1",
                clusterCidr: "10.42.0.0/16",
                serviceCidr: "10.43.0.0/16",
                secretsEncryption: true,
                extraServerArgs: [],
                extraAgentArgs: [],
            });
            assert.deepEqual(s.vault, { keyShares: 5, keyThreshold: 3 });
            assert.deepEqual(s.storage, { backend: "seaweedfs", size: "50Gi" });
            assert.deepEqual(s.members, []);
            assert.deepEqual(s.apps, { images: {} });
            assert.deepEqual(s.backup, {
                etcd: { schedule: "0 */6 * * *", retention: 28 },
                vault: { schedule: "30 */6 * * *", keep: 14 },
            });
            assert.deepEqual(s.adminCidrs, []);
            assert.deepEqual(s.devices, []);
            assert.equal(s.domain, undefined);
        });

        it("an external backend with its secret credentials, members and images pinned by digest", () => {
            const digest = "0123456789abcdef".repeat(4);
            const result = validateConfig(
                rawConfig(
                    {
                        ...bareMetal(),
                        [`${ns}:storage`]: { backend: "external", endpoint: "https://s3.example.org" },
                        [`${ns}:members`]: ["ana", "ben-2"],
                        [`${ns}:apps`]: {
                            images: {
                                storageS3Api: `ghcr.io/family/peoples-cloud-storage-s3-api@sha256:${digest}`,
                                storageKvApi: `registry.local:5000/peoples-cloud-storage-kv-api@sha256:${digest}`,
                            },
                        },
                    },
                    { ...sshKey, [`${ns}:s3AccessKeyId`]: "id", [`${ns}:s3SecretAccessKey`]: "secret" },
                ),
            );
            assert.ok(result.ok, JSON.stringify(result));
            assert.deepEqual(result.settings.storage, {
                backend: "external",
                endpoint: "https://s3.example.org",
                region: "us-east-1",
            });
            assert.deepEqual(result.settings.members, ["ana", "ben-2"]);
            assert.equal(result.settings.apps.images.storageKvApi?.startsWith("registry.local:5000/"), true);
        });

        it("a minimal Hetzner config, with documented defaults", () => {
            const result = validateConfig(rawConfig(hetzner(), hcloudToken));
            assert.ok(result.ok && result.settings.nodes.provider === "hetzner");
            assert.deepEqual(result.settings.nodes, {
                provider: "hetzner",
                locations: ["fsn1"],
                networkZone: "eu-central",
                image: "debian-12",
                servers: { count: 1, serverType: "cx32", leaving: 0 },
                agents: { count: 0, serverType: "cx22", leaving: 0 },
            });
        });

        it("host names given as DNS names, with a domain", () => {
            const result = validateConfig(
                rawConfig(
                    {
                        ...bareMetal([{ name: "pi", address: "pi.home.example.org" }]),
                        [`${ns}:domain`]: "home.example.org",
                    },
                    sshKey,
                ),
            );
            assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
        });
    });
});
