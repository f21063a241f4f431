// The apps layer under mocks: SeaweedFS's layout by cluster size or the external backend, each service's pod as
// the policy pack requires it, every chart and image pinned, the generated and configured secrets only in the
// Vault writes that store them and in secret outputs, and the order: Vault configured, secrets synced, workloads.
import * as assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";
import { type PodSpec, processEnv, s3ApiPod } from "../../components/apps/pods";
import type { SeaweedfsValues } from "../../components/apps/seaweedfs";
import { seaweedfs } from "../../components/apps/versions";
import type { HelmChart, KubeObject } from "../../lib/kube";
import { policies } from "../../policy/rules";
import type { PlatformConfig } from "../../stacks/config";
import { settingsSchema } from "../../stacks/schema";
import { policyConfig, resourceViolations, ruleSettings } from "../helpers/policy";
import { composeLayers } from "../helpers/layers";
import { type RecordedResource, settled, unwrap, useMocks } from "../helpers/mocks";
import { bareMetalNodes } from "../helpers/stackConfig";

const remoteScript = "pulumi-nodejs:dynamic/infra:RemoteScript";
const randomToken = "pulumi-nodejs:dynamic/infra:RandomToken";
const vaultWrite = "pulumi-nodejs:dynamic/vault:Write";

/** Test references only: digests of a label, not of any published image. */
const testImage = (service: string) =>
    `ghcr.io/family/peoples-cloud-${service}@sha256:${createHash("sha256").update(`test ${service}`).digest("hex")}`;
const images = { storageS3Api: testImage("storage-s3-api"), storageKvApi: testImage("storage-kv-api") };

const externalCredentials = {
    accessKeyId: "EXTERNALTESTKEYID0001",
    secretAccessKey: "external-test-secret-0123456789abcdef",
};

interface Options {
    backend?: "seaweedfs" | "external";
    members?: string[];
    withImages?: boolean;
}

async function buildApps(nodeCount: number, options: Options = {}) {
    /** Every value a RandomToken of the apps layer was given, by resource name. */
    const generated = new Map<string, string>();
    const recorded = await useMocks("family", { values: {}, secretKeys: new Set<string>() }, (r) => {
        if (r.type === randomToken) {
            const value = randomBytes(Number(r.inputs.bytes)).toString("hex");
            if (r.name.startsWith("apps-")) generated.set(r.name, value);
            return { value };
        }
        return { stdout: "" };
    });
    const settings = settingsSchema.parse({
        nodes: bareMetalNodes(nodeCount),
        storage:
            options.backend === "external"
                ? { backend: "external", endpoint: "https://s3.provider.example:8443", region: "eu-central-1" }
                : { backend: "seaweedfs", size: "100Gi" },
        members: options.members ?? ["ana", "ben"],
        apps: { images: options.withImages === false ? {} : images },
    });
    const config: PlatformConfig = {
        project: "peoples-cloud",
        stack: "family",
        settings,
        secrets: {
            sshPrivateKey: pulumi.secret("test-only-key"),
            ...(options.backend === "external"
                ? {
                      s3Credentials: {
                          accessKeyId: pulumi.secret(externalCredentials.accessKeyId),
                          secretAccessKey: pulumi.secret(externalCredentials.secretAccessKey),
                      },
                  }
                : {}),
        },
    };
    const { apps, after, protectedNames } = composeLayers(config);
    await settled();
    const mine = recorded.filter((r) => r.name.startsWith("apps-"));
    const byName = (name: string) => {
        const found = recorded.find((r) => r.name === name);
        assert.ok(found, `no resource ${name}: ${mine.map((r) => r.name).join(", ")}`);
        return found;
    };
    return { apps, recorded, mine, byName, after, generated, protectedNames };
}

const objectsOf = (r: RecordedResource) => yaml.loadAll(r.inputs.stdin as string) as KubeObject[];
const ofKind = (r: RecordedResource, kind: string) => objectsOf(r).filter((o) => o.kind === kind);
const seaweedValues = (r: RecordedResource) =>
    yaml.load((objectsOf(r)[0] as HelmChart).spec.valuesContent) as SeaweedfsValues;
type Deployment = KubeObject<"Deployment", { replicas: number; template: { spec: PodSpec & Record<string, unknown> } }>;
const deployments = (r: RecordedResource) => ofKind(r, "Deployment") as Deployment[];
const envOf = (d: Deployment) =>
    Object.fromEntries(d.spec.template.spec.containers[0].env.map((e) => [e.name, e.value]));

/** The engine's wire form of a secret value. */
const secretSig = "4dabf18193072939515e22adb298388d";
const isWireSecret = (value: unknown) =>
    typeof value === "object" && value !== null && (value as Record<string, unknown>)[secretSig] !== undefined;

describe("apps layer", () => {
    for (const [nodes, layout, replicas] of [
        [1, { masters: 1, volumeServers: 1, filers: 1, replication: "000" }, 1],
        [3, { masters: 3, volumeServers: 3, filers: 2, replication: "001" }, 2],
        [5, { masters: 3, volumeServers: 3, filers: 2, replication: "001" }, 2],
    ] as const) {
        it(`on ${nodes} node(s): SeaweedFS ${layout.masters}/${layout.volumeServers}/${layout.filers}, replication ${layout.replication}, ${replicas} replica(s) of each service`, async () => {
            const { mine, byName, recorded } = await buildApps(nodes);
            // 6 manifests (namespace, network policies, secret syncs, SeaweedFS, services, Ingresses) and 3 waits
            // (the operator's CRDs, the synced secrets, SeaweedFS's gateway); 4 Vault KV writes; 10 generated
            // secrets (ETag, name, kv-api's S3 secret and key, SeaweedFS's id and secret, and per member an S3
            // secret and a document-store token); and the component itself.
            const count = (type: string) => mine.filter((r) => r.type === type).length;
            assert.equal(count(remoteScript), 9, mine.map((r) => r.name).join(", "));
            assert.equal(count(vaultWrite), 4);
            assert.equal(count(randomToken), 10);
            assert.equal(mine.length, 23);
            assert.equal(recorded.filter((r) => r.type === "peoples-cloud:apps:AppsLayer").length, 1);

            const values = seaweedValues(byName("apps-seaweedfs"));
            assert.equal(values.master.replicas, layout.masters);
            assert.equal(values.volume.replicas, layout.volumeServers);
            assert.equal(values.filer.replicas, layout.filers);
            assert.equal(values.s3.replicas, layout.filers);
            assert.equal(values.master.defaultReplication, layout.replication);
            assert.equal(values.filer.defaultReplicaPlacement, layout.replication);
            assert.equal(values.global.seaweedfs.enableReplication, layout.replication !== "000");
            assert.deepEqual(values.volume.dataDirs, [
                {
                    name: "data1",
                    type: "persistentVolumeClaim",
                    size: "100Gi",
                    storageClass: "local-path",
                    maxVolumes: 0,
                },
            ]);
            assert.deepEqual([values.s3.enableAuth, values.s3.existingConfigSecret], [true, "seaweedfs-s3-config"]);
            for (const part of [values.master, values.volume, values.filer, values.s3]) {
                assert.deepEqual(
                    [part.podSecurityContext.runAsNonRoot, part.containerSecurityContext.allowPrivilegeEscalation],
                    [true, false],
                );
            }

            const services = byName("apps-storage-services");
            for (const d of deployments(services)) {
                assert.equal(d.spec.replicas, replicas, d.metadata.name);
                const spread = d.spec.template.spec.topologySpreadConstraints as { topologyKey: string }[] | undefined;
                assert.equal(spread?.[0].topologyKey, replicas > 1 ? "kubernetes.io/hostname" : undefined);
            }
            assert.deepEqual(
                ofKind(services, "PodDisruptionBudget").map((p) => p.spec),
                ["storage-s3-api", "storage-kv-api"].map((app) => ({
                    maxUnavailable: 1,
                    selector: { matchLabels: { "app.kubernetes.io/name": app } },
                })),
            );
        });
    }

    it("with an external backend: no SeaweedFS, the provider's endpoint, and its credentials only through Vault", async () => {
        const { mine, byName, recorded } = await buildApps(3, { backend: "external" });
        assert.ok(!mine.some((r) => r.name.includes("seaweedfs")), mine.map((r) => r.name).join(", "));
        assert.equal(mine.filter((r) => r.type === vaultWrite).length, 3);
        const [s3] = deployments(byName("apps-storage-services"));
        assert.equal(envOf(s3).BACKEND_ENDPOINT, "https://s3.provider.example:8443");
        assert.equal(envOf(s3).BACKEND_REGION, "eu-central-1");
        const policy = ofKind(byName("apps-storage-network"), "NetworkPolicy").find(
            (p) => p.metadata.name === "storage-s3-api",
        )!;
        const egress = (policy.spec as { egress: { ports: { port: number }[] }[] }).egress;
        assert.deepEqual(egress[2].ports, [{ protocol: "TCP", port: 8443 }]);
        const backend = byName("apps-kv-storage-s3-api-backend");
        assert.ok(isWireSecret(backend.inputs.data), "the credentials' Vault write is not secret");
        for (const r of recorded) {
            if (r === backend) continue;
            const text = JSON.stringify(r.inputs);
            assert.ok(!text.includes(externalCredentials.secretAccessKey), `${r.type} ${r.name} holds the secret key`);
            assert.ok(!text.includes(externalCredentials.accessKeyId), `${r.type} ${r.name} holds the key id`);
        }
    });

    it("keeps every generated secret out of every resource's inputs but the Vault writes that store it", async () => {
        const { recorded, generated, apps } = await buildApps(3);
        assert.equal(generated.size, 10);
        const forms = (hex: string) => [hex, hex.toUpperCase(), Buffer.from(hex, "hex").toString("base64")];
        const storing = recorded.filter(
            (r) => r.type === vaultWrite && String(r.inputs.path).startsWith("secret/data/apps/"),
        );
        assert.equal(storing.length, 4);
        for (const w of storing) assert.ok(isWireSecret(w.inputs.data), `${w.name}: data not secret`);
        const stored = new Set<string>();
        for (const r of recorded) {
            const text = JSON.stringify(r.inputs);
            for (const [name, hex] of generated) {
                if (!forms(hex).some((f) => text.includes(f))) continue;
                assert.ok(storing.includes(r), `${r.type} ${r.name} holds ${name}`);
                stored.add(name);
            }
        }
        assert.deepEqual([...stored].sort(), [...generated.keys()].sort(), "a generated secret reaches no Vault write");
        for (const member of ["ana", "ben"]) {
            const { accessKeyId, secretAccessKey, kvToken } = apps.members[member];
            assert.equal(accessKeyId, member);
            for (const out of [secretAccessKey, kvToken]) {
                const { value, secret } = await unwrap(out);
                assert.ok(secret, `${member}'s output is not secret`);
                assert.ok([...generated.values()].includes(value));
            }
        }
    });

    it("syncs the secrets with the Vault Secrets Operator and mounts them as the files each service reads", async () => {
        const { byName } = await buildApps(3);
        const sync = objectsOf(byName("apps-storage-secrets"));
        const auths = sync.filter((o) => o.kind === "VaultAuth");
        assert.deepEqual(
            auths.map((a) => a.spec),
            ["storage-s3-api", "storage-kv-api"].map((role) => ({
                method: "kubernetes",
                mount: "kubernetes",
                kubernetes: { role, serviceAccount: role, audiences: ["vault"] },
            })),
        );
        const statics = sync.filter((o) => o.kind === "VaultStaticSecret") as KubeObject<
            "VaultStaticSecret",
            { vaultAuthRef: string; path: string; destination: { name: string } }
        >[];
        assert.deepEqual(
            statics.map((s) => [s.spec.vaultAuthRef, s.spec.path, s.spec.destination.name]),
            [
                ["storage-s3-api", "apps/storage-s3-api/keys", "storage-s3-api-keys"],
                ["storage-s3-api", "apps/storage-s3-api/backend", "storage-s3-api-backend"],
                ["storage-s3-api", "apps/storage-s3-api/seaweedfs", "seaweedfs-s3-config"],
                ["storage-kv-api", "apps/storage-kv-api/keys", "storage-kv-api-keys"],
            ],
        );
        // Each Vault KV secret is where its VaultStaticSecret reads, under the service's own folder.
        for (const s of statics) byName(`apps-kv-${s.spec.path.slice("apps/".length).replace("/", "-")}`);

        const [s3, kv] = deployments(byName("apps-storage-services"));
        assert.deepEqual(envOf(s3), {
            LISTEN: "0.0.0.0:8080",
            OPS_LISTEN: "0.0.0.0:9090",
            S3_REGION: "us-east-1",
            BACKEND_ENDPOINT: "http://seaweedfs-s3.storage.svc:8333",
            BACKEND_REGION: "us-east-1",
            BACKEND_CREDENTIALS_FILE: "/run/secrets/peoples-cloud/backend/credentials.json",
            ACCESS_KEYS_FILE: "/run/secrets/peoples-cloud/keys/access-keys.json",
            ETAG_KEY_FILE: "/run/secrets/peoples-cloud/keys/etag.key",
            NAME_KEY_FILE: "/run/secrets/peoples-cloud/keys/name.key",
            TRANSIT_KEY: "storage-s3-api",
            VAULT_ADDR: "https://vault.vault.svc:8200",
            VAULT_CACERT: "/run/secrets/vault/ca.crt",
            VAULT_AUTH_MOUNT: "kubernetes",
            VAULT_AUTH_ROLE: "storage-s3-api",
            VAULT_JWT_FILE: "/run/secrets/vault/token",
            SHUTDOWN_GRACE_SECONDS: "25",
        });
        assert.deepEqual(envOf(kv), {
            LISTEN: "0.0.0.0:8080",
            STORAGE_S3_ENDPOINT: "http://storage-s3-api.storage.svc:8080",
            S3_REGION: "us-east-1",
            BUCKET: "kv-store",
            S3_CREDENTIALS_FILE: "/run/secrets/peoples-cloud/keys/s3-credentials.json",
            TOKENS_FILE: "/run/secrets/peoples-cloud/keys/tokens.json",
            SECRET_KEY_FILE: "/run/secrets/peoples-cloud/keys/secret.key",
            SHUTDOWN_GRACE_SECONDS: "25",
        });
        const s3Pod = s3.spec.template.spec;
        assert.equal(s3Pod.serviceAccountName, "storage-s3-api");
        assert.equal(s3Pod.automountServiceAccountToken, false);
        assert.deepEqual(s3Pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
        // The drain (25 s) after the pre-stop sleep (5 s) fits in the grace period.
        assert.ok(s3Pod.terminationGracePeriodSeconds >= 30);
        const c = s3Pod.containers[0];
        assert.deepEqual(
            [c.livenessProbe?.httpGet, c.readinessProbe?.httpGet],
            [
                { path: "/livez", port: 9090 },
                { path: "/readyz", port: 9090 },
            ],
        );
        const projected = s3Pod.volumes.find((v) => v.name === "vault");
        assert.deepEqual(projected, {
            name: "vault",
            projected: {
                sources: [
                    { serviceAccountToken: { audience: "vault", expirationSeconds: 3600, path: "token" } },
                    { secret: { name: "vault-ca", items: [{ key: "ca.crt", path: "ca.crt" }] } },
                ],
            },
        });
        const monitors = ofKind(byName("apps-storage-services"), "ServiceMonitor");
        assert.deepEqual(
            monitors.map((m) => [m.metadata.name, (m.spec as { endpoints: unknown[] }).endpoints]),
            [
                ["storage-s3-api", [{ port: "ops", path: "/metrics", interval: "30s" }]],
                ["storage-kv-api", [{ port: "http", path: "/metrics", interval: "30s" }]],
            ],
        );
        // What Prometheus scrapes is not public: storage-kv-api's Ingress routes only its API.
        const kvIngress = ofKind(byName("apps-storage-ingress"), "Ingress").find(
            (i) => i.metadata.name === "storage-kv-api",
        )!;
        assert.deepEqual(
            (kvIngress.spec as { rules: { http: { paths: { path: string }[] } }[] }).rules[0].http.paths.map(
                (p) => p.path,
            ),
            ["/v1"],
        );
    });

    it("lets only the ingress and storage-kv-api reach storage-s3-api, and only storage-s3-api reach the backend", async () => {
        const { byName } = await buildApps(3);
        const policies = Object.fromEntries(
            ofKind(byName("apps-storage-network"), "NetworkPolicy").map((p) => [p.metadata.name, p.spec]),
        ) as Record<string, Record<string, unknown>>;
        assert.deepEqual(Object.keys(policies), ["deny-ingress", "storage-s3-api", "storage-kv-api", "seaweedfs"]);
        assert.deepEqual(policies["deny-ingress"], { podSelector: {}, policyTypes: ["Ingress"] });
        // storage-kv-api: its API from the ingress, its /metrics from Prometheus's namespace, nothing else.
        assert.deepEqual(policies["storage-kv-api"].ingress, [
            {
                from: [
                    {
                        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
                        podSelector: { matchLabels: { "app.kubernetes.io/name": "traefik" } },
                    },
                    { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
                ],
                ports: [{ protocol: "TCP", port: 8080 }],
            },
        ]);
        const kvEgress = policies["storage-kv-api"].egress as { to: unknown[] }[];
        assert.deepEqual(kvEgress[1].to, [
            { podSelector: { matchLabels: { "app.kubernetes.io/name": "storage-s3-api" } } },
        ]);
        const seaweedIngress = policies.seaweedfs.ingress as { from: unknown[]; ports?: unknown[] }[];
        assert.deepEqual(seaweedIngress, [
            { from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "seaweedfs" } } }] },
            {
                from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "storage-s3-api" } } }],
                ports: [{ protocol: "TCP", port: 8333 }],
            },
        ]);
        const ingress = ofKind(byName("apps-storage-ingress"), "Ingress");
        assert.deepEqual(
            ingress.map((i) => (i.spec as { rules: { host: string }[] }).rules[0].host),
            ["s3.192-0-2-11.sslip.io", "kv.192-0-2-11.sslip.io"],
        );
        for (const i of ingress) {
            assert.equal(i.metadata.annotations?.["cert-manager.io/cluster-issuer"], "peoples-cloud-internal-ca");
        }
    });

    it("pins every chart and image", async () => {
        const { byName, mine } = await buildApps(3);
        const chart = objectsOf(byName("apps-seaweedfs"))[0] as HelmChart;
        assert.deepEqual(
            [chart.spec.repo, chart.spec.chart, chart.spec.version],
            ["https://seaweedfs.github.io/seaweedfs/helm", "seaweedfs", seaweedfs.chart.version],
        );
        assert.match(chart.spec.version, /^\d+\.\d+\.\d+$/);
        assert.deepEqual(seaweedValues(byName("apps-seaweedfs")).image, {
            repository: "chrislusf/seaweedfs",
            tag: "4.53",
        });
        for (const r of mine.filter(
            (m) => m.type === remoteScript && (m.inputs.env as Record<string, string>).K3S_MANIFEST,
        )) {
            for (const d of deployments(r)) {
                const spec = d.spec.template.spec;
                for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
                    assert.match(c.image, /@sha256:[0-9a-f]{64}$/, `${d.metadata.name}/${c.name}`);
                }
            }
        }
    });

    for (const backend of ["seaweedfs", "external"] as const) {
        it(`passes every rule of the policy pack, prod's settings (${backend})`, async () => {
            const { mine } = await buildApps(3, { backend });
            const file = policyConfig("prod");
            const found: string[] = [];
            let workloads = 0;
            for (const policy of policies) {
                if ("validateStack" in policy) continue;
                const { config } = ruleSettings(file, policy);
                for (const r of mine) {
                    found.push(...resourceViolations(policy, { type: r.type, name: r.name, props: r.inputs }, config));
                }
            }
            for (const r of mine.filter((m) => m.type === remoteScript && typeof m.inputs.stdin === "string")) {
                workloads += deployments(r).length;
            }
            assert.equal(workloads, 2);
            assert.deepEqual(found, []);
        });
    }

    it("runs after Vault's configuration, syncs the secrets before any workload starts", async () => {
        const { after } = await buildApps(3);
        for (const write of [
            "apps-kv-storage-s3-api-keys",
            "apps-kv-storage-s3-api-backend",
            "apps-kv-storage-kv-api-keys",
        ]) {
            assert.ok(after(write).has("vault-config"), `${write} before Vault's configuration`);
        }
        const secrets = after("apps-storage-secrets");
        for (const dep of [
            "apps-kv-storage-s3-api-keys",
            "apps-kv-storage-kv-api-keys",
            "apps-secrets-operator-ready",
            "apps-storage-namespace",
        ]) {
            assert.ok(secrets.has(dep), `the secrets' sync does not wait for ${dep}`);
        }
        assert.ok(after("apps-secrets-operator-ready").has("vault-vault-secrets-operator"));
        assert.ok(after("apps-storage-secrets-ready").has("apps-storage-secrets"));
        assert.ok(after("apps-seaweedfs").has("apps-storage-secrets-ready"), "SeaweedFS before its identities");
        const services = after("apps-storage-services");
        for (const dep of ["apps-storage-secrets-ready", "apps-seaweedfs-ready", "apps-storage-network"]) {
            assert.ok(services.has(dep), `the services do not wait for ${dep}`);
        }
        assert.ok(after("apps-storage-namespace").has("crds-prometheus-operator-crds-ready"), "ServiceMonitor's CRD");
    });

    it("without published images, installs the backend and the secrets but no service", async () => {
        const { mine, apps } = await buildApps(1, { withImages: false });
        assert.deepEqual(apps.services, []);
        assert.ok(!mine.some((r) => ["apps-storage-services", "apps-storage-ingress"].includes(r.name)));
        assert.ok(mine.some((r) => r.name === "apps-seaweedfs"));
        assert.equal(mine.filter((r) => r.type === vaultWrite).length, 4);
    });

    it("adds and removes members' keys by config, and never touches the others", async () => {
        const one = await buildApps(1, { members: ["ana"] });
        const two = await buildApps(1, { members: ["ana", "carla"] });
        const tokens = (b: typeof one) =>
            b.mine
                .filter((r) => r.type === randomToken)
                .map((r) => r.name)
                .sort();
        const added = tokens(two).filter((t) => !tokens(one).includes(t));
        assert.deepEqual(added, ["apps-member-carla-kv-token", "apps-member-carla-s3-secret"]);
        assert.ok(tokens(one).every((t) => tokens(two).includes(t)));
        assert.deepEqual(Object.keys(two.apps.members), ["ana", "carla"]);
        // The keys that make names and ETags readable are protected from a destroy; nothing else is.
        assert.deepEqual(
            one.protectedNames.filter((n) => n.startsWith("apps-")),
            ["apps-etag-key", "apps-name-key"],
        );
    });

    it("gives a test the environment to start a service as its pod would, its files under one folder", () => {
        const pod = s3ApiPod({
            image: images.storageS3Api,
            backendEndpoint: "http://127.0.0.1:9000",
            backendRegion: "us-east-1",
            vaultAddress: "https://127.0.0.1:8200",
            vaultAuthMount: "kubernetes",
            vaultAuthRole: "storage-s3-api",
            transitKey: "storage-s3-api",
        });
        const env = processEnv(pod, "storage-s3-api", "/tmp/pod");
        assert.equal(env.ACCESS_KEYS_FILE, "/tmp/pod/keys/access-keys.json");
        assert.equal(env.BACKEND_CREDENTIALS_FILE, "/tmp/pod/backend/credentials.json");
        assert.equal(env.VAULT_JWT_FILE, "/tmp/pod/vault/token");
        assert.equal(env.VAULT_CACERT, "/tmp/pod/vault/ca.crt");
        assert.equal(env.BACKEND_ENDPOINT, "http://127.0.0.1:9000");
        assert.throws(() => processEnv(pod, "sidecar", "/tmp/pod"), /no container 'sidecar'/);
    });
});
