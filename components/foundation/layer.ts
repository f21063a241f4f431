// The cluster foundation: K3s's Traefik made HTTPS-only, K3s's ServiceLB for LoadBalancer addresses,
// cert-manager with its issuers, and the prometheus-operator CRDs that operators' charts expect.
// Everything reaches the cluster as K3s auto-deploy manifests on the first server (see the README's "Cluster
// foundation"): the cluster fetches the pinned charts itself, so a preview needs no chart repository and no
// Kubernetes provider plugin. Objects of a CRD are written only after a step has seen that CRD established.
import * as pulumi from "@pulumi/pulumi";
import { formerly } from "../../lib/aliases";
import { K3sManifests } from "../../lib/k3s-manifests";
import type { TlsIssuer } from "../../lib/kube";
import { RemoteScript } from "../../lib/remote-script";
import { scriptsIn } from "../../lib/scripts";
import type { K3sCluster } from "../infra/k3s";
import { defaultDomain } from "./domain";
import {
    CERT_MANAGER_CRDS,
    CERT_MANAGER_WEBHOOK,
    certManagerChart,
    INGRESS_CLASS,
    INTERNAL_CA_SECRET,
    ISSUERS,
    issuers,
    PROMETHEUS_OPERATOR_CRDS,
    prometheusOperatorCrdsChart,
    traefikConfig,
} from "./manifests";

const script = scriptsIn(__dirname);

export interface IssuerNames {
    /** The issuer the apps' ingress certificates use (peoples-cloud:tlsIssuer). */
    default: string;
    /** For in-cluster TLS: Vault, the storage services. */
    internalCa: string;
    letsencrypt?: string;
    letsencryptStaging?: string;
}

/** The issuer named by tlsIssuer, or Let's Encrypt when an ACME address is set, or the internal CA. */
export function defaultIssuer(args: Pick<FoundationLayerArgs, "tlsIssuer" | "acmeEmail">): string {
    const choice = args.tlsIssuer ?? (args.acmeEmail ? "letsencrypt" : "internal-ca");
    return choice === "internal-ca" ? ISSUERS.internalCa : choice;
}

export interface FoundationLayerArgs {
    /** The cluster; every manifest is written on its first server once it is up. */
    readonly cluster: K3sCluster;
    /** The stack's name, in the internal CA's subject. */
    readonly stack: string;
    /** The family's DNS name; without it, a wildcard name derived from the ingress address. */
    readonly domain?: string;
    /** E-mail for Let's Encrypt's notices; with it, the `letsencrypt` and `letsencrypt-staging` issuers exist. */
    readonly acmeEmail?: string;
    /** The issuer of the apps' ingress certificates; without it, Let's Encrypt with `acmeEmail`, else the internal CA. */
    readonly tlsIssuer?: TlsIssuer;
}

export class FoundationLayer extends pulumi.ComponentResource {
    readonly ingressClass = INGRESS_CLASS;
    /** Where ServiceLB publishes Traefik: the first server's public address. Point the wildcard record here. */
    readonly ingressAddress: pulumi.Output<string>;
    /** peoples-cloud:domain, or a wildcard name derived from the ingress address. */
    readonly domain: pulumi.Output<string>;
    readonly issuers: IssuerNames;
    /** The internal CA's certificate (PEM), for clients that verify in-cluster TLS (the Pulumi run, for Vault). */
    readonly internalCaCertificate: pulumi.Output<string>;
    /** Depend on these to find cert-manager serving, the internal CA issued and every CRD established. */
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: FoundationLayerArgs, opts?: pulumi.ComponentResourceOptions) {
        super(
            "peoples-cloud:foundation:FoundationLayer",
            name,
            {},
            formerly("peoples-cloud:crds:FoundationLayer", opts),
        );
        const server = args.cluster.firstServer;
        const onServer = { node: server.name, connection: server.connection, installation: server.installation };
        const k3s = new K3sManifests(this, name, server);

        const installed = [args.cluster];
        k3s.write("traefik-config", [traefikConfig()], installed);
        const certManager = k3s.write("cert-manager", [certManagerChart()], installed);
        const prometheusCrds = k3s.write("prometheus-operator-crds", [prometheusOperatorCrdsChart()], installed);
        const certManagerReady = k3s.wait(
            "cert-manager",
            { K3S_WAIT_CRDS: CERT_MANAGER_CRDS.join(" "), K3S_WAIT_DEPLOYMENTS: CERT_MANAGER_WEBHOOK },
            [certManager],
        );
        const issuerObjects = issuers({ stack: args.stack, acmeEmail: args.acmeEmail });
        const issuersWritten = k3s.write("issuers", issuerObjects, [certManagerReady]);
        const caReady = k3s.wait(
            "internal-ca",
            { K3S_WAIT_CERTIFICATES: `${INTERNAL_CA_SECRET.namespace}/${INTERNAL_CA_SECRET.name}` },
            [issuersWritten],
        );
        const prometheusCrdsReady = k3s.wait(
            "prometheus-operator-crds",
            { K3S_WAIT_CRDS: PROMETHEUS_OPERATOR_CRDS.join(" ") },
            [prometheusCrds],
        );
        this.internalCaCertificate = new RemoteScript(
            `${name}-internal-ca-certificate`,
            {
                ...onServer,
                step: "read the internal CA certificate",
                script: script("k3s-read-ca.sh"),
                env: { K3S_CA_SECRET: `${INTERNAL_CA_SECRET.namespace}/${INTERNAL_CA_SECRET.name}` },
                keepStdout: true,
                triggers: [issuersWritten.stdin],
            },
            { parent: this, dependsOn: [caReady] },
        ).stdout;
        this.ready = [certManagerReady, caReady, prometheusCrdsReady];

        const acme = issuerObjects.some((o) => o.metadata.name === ISSUERS.letsencrypt);
        this.issuers = {
            default: defaultIssuer(args),
            internalCa: ISSUERS.internalCa,
            ...(acme ? { letsencrypt: ISSUERS.letsencrypt, letsencryptStaging: ISSUERS.letsencryptStaging } : {}),
        };
        this.ingressAddress = pulumi.output(server.publicAddress);
        const domain = args.domain;
        this.domain = domain ? pulumi.output(domain) : this.ingressAddress.apply(defaultDomain);
        this.registerOutputs({
            ingressAddress: this.ingressAddress,
            domain: this.domain,
            issuers: this.issuers,
            internalCaCertificate: this.internalCaCertificate,
        });
    }
}
