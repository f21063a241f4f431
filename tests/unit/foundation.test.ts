// The cluster foundation layer's graph under mocks: what each manifest tells K3s, pinned; the issuers per
// stack; no object of a CRD written before a step has seen that CRD established; the default domain.
import * as assert from "node:assert/strict";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";
import { defaultDomain } from "../../components/foundation/domain";
import { FoundationLayer } from "../../components/foundation/layer";
import type { HelmChart, KubeObject } from "../../lib/kube";
import { certManager, prometheusOperatorCrds } from "../../components/foundation/versions";
import { InfraLayer } from "../../components/infra/layer";
import { settingsSchema } from "../../stacks/schema";
import { dependencyRecorder, settled, unwrap, useMocks } from "../helpers/mocks";
import { infraArgs, foundationArgs } from "../../program";

const remoteScript = "pulumi-nodejs:dynamic/infra:RemoteScript";

interface Step {
    name: string;
    env: Record<string, string>;
    stdin: string;
    /** Names of the resources this one waits for, directly or through them. */
    after: Set<string>;
}

async function buildFoundation(settingsInput: Record<string, unknown>, stack = "family") {
    const recorded = await useMocks(stack, { values: {}, secretKeys: new Set<string>() }, (r) => {
        if (r.type === "hcloud:index/server:Server") return { ipv4Address: "203.0.113.7" };
        return { stdout: r.name.endsWith("internal-ca-certificate") ? "-----BEGIN CERTIFICATE-----\n..." : "" };
    });
    const settings = settingsSchema.parse({ sshPublicKey: "ssh-ed25519 AAAAtest admin", ...settingsInput });
    const infra = new InfraLayer(
        "infra",
        infraArgs({
            project: "peoples-cloud",
            stack,
            settings,
            secrets: { sshPrivateKey: pulumi.secret("test-only-key") },
        }),
    );
    const deps = dependencyRecorder([[infra.cluster!, "infra-k3s"]]);
    const foundation = new FoundationLayer(
        "crds",
        foundationArgs({ project: "peoples-cloud", stack, settings, secrets: {} }, infra.cluster!),
        { transformations: deps.transformations },
    );
    const inFoundation = () => recorded.filter((r) => r.type === remoteScript && r.name.startsWith("crds-"));
    await settled();
    // Four manifests, their three waits and the read of the CA certificate, all on the first server.
    assert.equal(
        inFoundation().length,
        8,
        inFoundation()
            .map((r) => r.name)
            .join(", "),
    );
    const steps: Step[] = inFoundation().map((r) => ({
        name: r.name,
        env: r.inputs.env as Record<string, string>,
        stdin: r.inputs.stdin as string,
        after: deps.after(r.name),
    }));
    return { foundation, infra, steps, recorded };
}

const manifests = (steps: Step[]) =>
    steps.filter((s) => s.env.K3S_MANIFEST).map((s) => ({ step: s, objects: yaml.loadAll(s.stdin) as KubeObject[] }));

const bareMetal = (
    hosts: { name: string; address: string; role?: string }[] = [{ name: "node-1", address: "192.0.2.11" }],
) => ({
    nodes: { provider: "bare-metal", hosts },
});

describe("cluster foundation layer", () => {
    it("writes Traefik's config, cert-manager, the prometheus-operator CRDs and the issuers to the first server", async () => {
        const { steps } = await buildFoundation(
            bareMetal([
                { name: "node-1", address: "192.0.2.11" },
                { name: "node-2", address: "192.0.2.12", role: "agent" },
            ]),
        );
        assert.deepEqual(
            manifests(steps)
                .map((m) => m.step.env.K3S_MANIFEST)
                .sort(),
            [
                "peoples-cloud-cert-manager",
                "peoples-cloud-issuers",
                "peoples-cloud-prometheus-operator-crds",
                "peoples-cloud-traefik-config",
            ],
        );
        // K3s applies the folder of one server only; the first one, which never leaves.
        const infraSteps = steps.map((s) => s.name);
        assert.equal(infraSteps.length, 8, infraSteps.join(", "));
    });

    it("pins every chart to an exact version and every image of cert-manager to its release", async () => {
        const { steps } = await buildFoundation(bareMetal());
        const charts = manifests(steps).flatMap((m) => m.objects.filter((o): o is HelmChart => o.kind === "HelmChart"));
        assert.deepEqual(
            charts.map((c) => [c.spec.repo, c.spec.chart, c.spec.version]),
            [
                [certManager.chart.repo, "cert-manager", "v1.19.6"],
                [prometheusOperatorCrds.chart.repo, "prometheus-operator-crds", "25.0.1"],
            ],
        );
        const values = yaml.load(charts[0].spec.valuesContent) as Record<string, { image?: unknown }> & {
            image: unknown;
        };
        const images = [
            values.image,
            ...["webhook", "cainjector", "acmesolver", "startupapicheck"].map((k) => values[k].image),
        ];
        for (const image of images) {
            assert.match(
                JSON.stringify(image),
                /^\{"repository":"quay\.io\/jetstack\/cert-manager-[a-z]+","tag":"v1\.19\.6"\}$/,
            );
        }
        assert.deepEqual(values.crds, { enabled: true, keep: true });
    });

    it("makes Traefik HTTPS-only: web redirects to websecure, TLS on, the published service on", async () => {
        const { steps } = await buildFoundation(bareMetal());
        const config = manifests(steps).find((m) => m.step.env.K3S_MANIFEST === "peoples-cloud-traefik-config")!
            .objects[0] as KubeObject<"HelmChartConfig", { valuesContent: string }>;
        // K3s merges a HelmChartConfig into its own HelmChart of the same name and namespace.
        assert.deepEqual(config.metadata.name, "traefik");
        assert.deepEqual(config.metadata.namespace, "kube-system");
        assert.deepEqual(yaml.load(config.spec.valuesContent), {
            ports: {
                web: { redirections: { entryPoint: { to: "websecure", scheme: "https", permanent: true } } },
                websecure: { tls: { enabled: true } },
            },
            providers: { kubernetesIngress: { publishedService: { enabled: true } } },
        });
    });

    it("writes no object of a CRD before a step has waited for that CRD to be established", async () => {
        const { steps } = await buildFoundation({ ...bareMetal(), acmeEmail: "admin@example.org" });
        const builtIn = new Set(["v1", "apps/v1", "helm.cattle.io/v1"]); // K3s has these before any manifest
        const waits = steps.filter((s) => s.name.endsWith("-ready"));
        let checked = 0;
        for (const { step, objects } of manifests(steps)) {
            for (const o of objects) {
                if (builtIn.has(o.apiVersion)) continue;
                const crd = `${o.kind.toLowerCase()}s.${o.apiVersion.split("/")[0]}`;
                const waitedFor = waits.filter(
                    (w) => step.after.has(w.name) && (w.env.K3S_WAIT_CRDS ?? "").split(" ").includes(crd),
                );
                assert.ok(waitedFor.length > 0, `${step.name} writes a ${o.kind} without waiting for ${crd}`);
                checked++;
            }
        }
        assert.equal(checked, 5, "the self-signed and CA issuers, the CA certificate, two ACME issuers");
        // The issuers also wait for cert-manager's webhook, which admits them.
        const issuers = steps.find((s) => s.env.K3S_MANIFEST === "peoples-cloud-issuers")!;
        const webhook = waits.find((w) => w.env.K3S_WAIT_DEPLOYMENTS === "cert-manager/cert-manager-webhook")!;
        assert.ok(issuers.after.has(webhook.name));
        // And every step runs after K3s is installed.
        for (const s of steps) assert.ok(s.after.has("infra-k3s"), `${s.name} does not wait for K3s`);
    });

    it("gives a dev stack the internal CA only, and a stack with an ACME address Let's Encrypt by default", async () => {
        const dev = await buildFoundation(bareMetal(), "dev");
        assert.deepEqual(dev.foundation.issuers, {
            default: "peoples-cloud-internal-ca",
            internalCa: "peoples-cloud-internal-ca",
        });
        const devIssuers = manifests(dev.steps).find((m) => m.step.env.K3S_MANIFEST === "peoples-cloud-issuers")!;
        assert.deepEqual(
            devIssuers.objects.map((o) => `${o.kind}/${o.metadata.name}`),
            [
                "ClusterIssuer/peoples-cloud-selfsigned",
                "Certificate/peoples-cloud-internal-ca",
                "ClusterIssuer/peoples-cloud-internal-ca",
            ],
        );

        const prod = await buildFoundation(
            {
                nodes: { provider: "hetzner", servers: { count: 3 } },
                adminCidrs: ["198.51.100.0/24"],
                acmeEmail: "admin@example.org",
            },
            "prod",
        );
        assert.equal(prod.foundation.issuers.default, "letsencrypt");
        const acme = manifests(prod.steps)
            .find((m) => m.step.env.K3S_MANIFEST === "peoples-cloud-issuers")!
            .objects.filter((o) => o.kind === "ClusterIssuer" && JSON.stringify(o.spec).includes("acme"));
        assert.deepEqual(
            acme.map((o) => [o.metadata.name, (o.spec as { acme: { server: string; email: string } }).acme.server]),
            [
                ["letsencrypt-staging", "https://acme-staging-v02.api.letsencrypt.org/directory"],
                ["letsencrypt", "https://acme-v02.api.letsencrypt.org/directory"],
            ],
        );
        for (const o of acme) {
            assert.deepEqual((o.spec as { acme: { solvers: unknown } }).acme.solvers, [
                { http01: { ingress: { ingressClassName: "traefik" } } },
            ]);
            assert.equal((o.spec as { acme: { email: string } }).acme.email, "admin@example.org");
        }

        const staging = await buildFoundation({
            ...bareMetal(),
            acmeEmail: "admin@example.org",
            tlsIssuer: "letsencrypt-staging",
        });
        assert.equal(staging.foundation.issuers.default, "letsencrypt-staging");
    });

    it("derives the domain from the ingress address unless one is configured, and reads the CA certificate", async () => {
        const bare = await buildFoundation(bareMetal());
        assert.equal((await unwrap(bare.foundation.domain)).value, "192-0-2-11.sslip.io");
        assert.equal((await unwrap(bare.foundation.ingressAddress)).value, "192.0.2.11");
        assert.match((await unwrap(bare.foundation.internalCaCertificate)).value, /^-----BEGIN CERTIFICATE-----/);
        const read = bare.steps.find((s) => s.name === "crds-internal-ca-certificate")!;
        assert.equal(read.env.K3S_CA_SECRET, "cert-manager/peoples-cloud-internal-ca");

        const hetzner = await buildFoundation({
            nodes: { provider: "hetzner" },
            adminCidrs: ["198.51.100.0/24"],
        });
        assert.equal((await unwrap(hetzner.foundation.domain)).value, "203-0-113-7.sslip.io");

        const own = await buildFoundation({ ...bareMetal(), domain: "cloud.example.org" });
        assert.equal((await unwrap(own.foundation.domain)).value, "cloud.example.org");
    });
});

describe("default domain", () => {
    const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
    const cases: [string, string][] = [
        ["203.0.113.10", "203-0-113-10.sslip.io"],
        ["2a01:4f8:c17:b8f::2", "2a01-4f8-c17-b8f--2.sslip.io"],
        ["2A01:04F8:0C17:0B8F:0000:0000:0000:0002", "2a01-4f8-c17-b8f--2.sslip.io"],
        // The longest run of zeros is compressed; of two equal runs, the first.
        ["2001:db8:0:1:0:0:0:1", "2001-db8-0-1--1.sslip.io"],
        ["2001:db8:0:0:1:0:0:1", "2001-db8--1-0-0-1.sslip.io"],
        // '::' at an end would make a label end or begin with '-': the zeros are spelled out.
        ["2a01:4f8:c17:b8f::", "2a01-4f8-c17-b8f-0-0-0-0.sslip.io"],
        ["::1", "0-0-0-0-0-0-0-1.sslip.io"],
    ];
    for (const [address, domain] of cases) {
        it(`${address} -> ${domain}`, () => {
            assert.equal(defaultDomain(address), domain);
            for (const l of domain.split(".")) assert.match(l, label);
        });
    }
    it("refuses what is not an IP address, naming the setting to use instead", () => {
        assert.throws(() => defaultDomain("node-1.example.org"), /peoples-cloud:domain/);
        assert.throws(() => defaultDomain("::ffff:192.0.2.1"), /IPv4-mapped/);
    });
});
