// The Vault layer: the namespace and TLS certificate (internal CA), the pinned official chart with raft
// storage, the bootstrap — initialised once, followers joined, every server unsealed — and the configuration
// (engines, keys, policies, Kubernetes auth, audit, an admin token; the root token revoked), all run as the
// Vault CLI in the pods through `k3s kubectl exec` on the first K3s server, over SSH. The unseal keys and the
// admin token are secret outputs; nothing else holds them.
import * as pulumi from "@pulumi/pulumi";
import { K3sManifests } from "../../lib/k3s-manifests";
import { RemoteScript } from "../../lib/remote-script";
import { scriptsIn } from "../../lib/scripts";
import type { VaultServer } from "../../lib/vault/operator";
import type { FoundationLayer } from "../foundation/layer";
import type { K3sCluster } from "../infra/k3s";
import { VaultBootstrap } from "./bootstrap";
import { type AppIdentity, VaultConfiguration } from "./config";
import {
    CA_CERT_FILE,
    LEADER_ADDRESS,
    TLS_SECRET,
    VAULT_NAMESPACE,
    vaultChart,
    vaultCliIn,
    vaultReplicas,
    vaultSecretsOperatorChart,
    vaultSecretsOperatorTls,
    vaultTls,
    VSO_CA_SECRET,
    VSO_NAMESPACE,
} from "./manifests";

const script = scriptsIn(__dirname);

export interface VaultLayerArgs {
    /** The cluster; Vault's manifests and CLI run on its first server. */
    readonly cluster: K3sCluster;
    /** How many nodes the cluster has: three or more get three replicas on different nodes. */
    readonly nodeCount: number;
    /** Its internal CA issues Vault's certificate; Vault is installed once the foundation is ready. */
    readonly foundation: FoundationLayer;
    /** Shamir split of the unseal keys: how many are made, and how many unseal. */
    readonly keyShares: number;
    readonly keyThreshold: number;
    /** The apps that get a policy, Kubernetes auth role and PKI role (and a transit key if they encrypt). */
    readonly apps: readonly AppIdentity[];
}

export class VaultLayer extends pulumi.ComponentResource {
    /** Vault's API for clients in the cluster (verify it with the foundation's internal CA). */
    readonly address = `https://vault.${VAULT_NAMESPACE}.svc:8200`;
    readonly replicas: number;
    /**
     * The active server, for calls a standby cannot answer (a raft snapshot): the chart's `vault-active` service
     * with three servers (Kubernetes service registration labels the active pod); the one server otherwise.
     */
    readonly activeAddress: string;
    /** Secret: the unseal keys, only in Pulumi's encrypted state. */
    readonly unsealKeys: pulumi.Output<string[]>;
    /** Secret: the admin token for day-2 work (the root token is revoked once the configuration is in). */
    readonly adminToken: pulumi.Output<string>;
    readonly sealed: pulumi.Output<boolean[]>;
    /** The Vault CLI in `vault-0`, which later layers write their settings through (with the admin token). */
    readonly operator: VaultServer;
    /** Done once Vault's engines, policies and auth roles are in place (and the root token revoked). */
    readonly configuration: pulumi.Resource;
    /** The manifest of the Vault Secrets Operator's chart: wait after it for the operator's CRDs. */
    readonly secretsOperator: RemoteScript;

    constructor(name: string, args: VaultLayerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:vault:VaultLayer", name, {}, opts);
        const server = args.cluster.firstServer;
        const onServer = { node: server.name, connection: server.connection, installation: server.installation };
        const k3s = new K3sManifests(this, name, server);
        this.replicas = vaultReplicas(args.nodeCount);
        this.activeAddress = this.replicas > 1 ? `https://vault-active.${VAULT_NAMESPACE}.svc:8200` : this.address;
        const pods = Array.from({ length: this.replicas }, (_, i) => `vault-${i}`);

        // The Certificate needs cert-manager's CRDs and the internal CA: the foundation is ready first.
        const tls = k3s.write("vault-tls", vaultTls(args.foundation.issuers.internalCa), [...args.foundation.ready]);
        const certificateReady = (what: string, certificate: string, written: RemoteScript) =>
            k3s.wait(what, { K3S_WAIT_CERTIFICATES: certificate }, [written]);
        const tlsReady = certificateReady("tls", `${VAULT_NAMESPACE}/${TLS_SECRET}`, tls);
        const chart = k3s.write("vault", [vaultChart(args.nodeCount)], [tlsReady]);
        const answering = new RemoteScript(
            `${name}-pods-answer`,
            {
                ...onServer,
                step: "wait for the Vault servers to answer",
                script: script("vault-answers.sh"),
                env: { VAULT_NAMESPACE, VAULT_PODS: pods.join(" ") },
                triggers: [chart.stdin],
            },
            { parent: this, dependsOn: [chart] },
        );
        const servers = pods.map((pod) => ({ name: pod, command: vaultCliIn(pod), ssh: server.connection }));
        const bootstrap = new VaultBootstrap(
            `${name}-bootstrap`,
            {
                servers,
                joinAddress: LEADER_ADDRESS,
                joinFlags: [`-leader-ca-cert=@${CA_CERT_FILE}`],
                keyShares: args.keyShares,
                keyThreshold: args.keyThreshold,
            },
            { parent: this, dependsOn: [answering] },
        );

        // The operator's Vault connection needs the CA secret before the chart makes it.
        const vsoCa = k3s.write(
            "vault-secrets-operator-ca",
            vaultSecretsOperatorTls(args.foundation.issuers.internalCa),
            [...args.foundation.ready],
        );
        this.secretsOperator = k3s.write(
            "vault-secrets-operator",
            [vaultSecretsOperatorChart(this.address)],
            [certificateReady("vault-secrets-operator-ca", `${VSO_NAMESPACE}/${VSO_CA_SECRET}`, vsoCa)],
        );

        const configuration = new VaultConfiguration(
            `${name}-config`,
            { server: servers[0], rootToken: bootstrap.rootToken, sealed: bootstrap.sealed, apps: args.apps },
            { parent: this, dependsOn: [bootstrap] },
        );

        this.operator = servers[0];
        this.configuration = configuration;
        this.unsealKeys = bootstrap.unsealKeys;
        this.adminToken = configuration.adminToken;
        this.sealed = bootstrap.sealed;
        this.registerOutputs({ address: this.address, adminToken: this.adminToken, sealed: this.sealed });
    }
}
