// The Vault layer's install: the namespace and TLS certificate (internal CA), the pinned official chart with
// raft storage, then the bootstrap — initialised once, followers joined, every server unsealed — run as the
// Vault CLI in each pod through `k3s kubectl exec` on the first K3s server, over SSH. The unseal keys and
// root token are secret outputs; nothing else holds them. (Engines, policies and auth, with @pulumi/vault,
// come next: that provider's plugin cannot be built on this machine.)
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Settings } from "../../stacks/schema";
import type { FoundationLayer } from "../crds/layer";
import { K3sManifests } from "../crds/k3s-manifests";
import type { K3sCluster } from "../infra/k3s";
import { RemoteScript } from "../infra/remote";
import { VaultBootstrap } from "./bootstrap";
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

const script = (name: string) => fs.readFileSync(path.join(__dirname, "scripts", name), "utf8");

export interface VaultLayerArgs {
    cluster: K3sCluster;
    /** How many nodes the cluster has: three or more get three replicas on different nodes. */
    nodeCount: number;
    foundation: FoundationLayer;
    settings: Settings["vault"];
}

export class VaultLayer extends pulumi.ComponentResource {
    /** Vault's API for clients in the cluster (verify it with the foundation's internal CA). */
    readonly address = `https://vault.${VAULT_NAMESPACE}.svc:8200`;
    readonly replicas: number;
    /** Secret: the unseal keys, only in Pulumi's encrypted state. */
    readonly unsealKeys: pulumi.Output<string[]>;
    /** Secret: the initial root token, for the configuration that follows. */
    readonly rootToken: pulumi.Output<string>;
    readonly sealed: pulumi.Output<boolean[]>;

    constructor(name: string, args: VaultLayerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:vault:VaultLayer", name, {}, opts);
        const server = args.cluster.firstServer;
        const onServer = { node: server.name, connection: server.connection };
        const k3s = new K3sManifests(this, name, server);
        this.replicas = vaultReplicas(args.nodeCount);
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
        const bootstrap = new VaultBootstrap(
            `${name}-bootstrap`,
            {
                servers: pods.map((pod) => ({ name: pod, command: vaultCliIn(pod), ssh: server.connection })),
                joinAddress: LEADER_ADDRESS,
                joinFlags: [`-leader-ca-cert=@${CA_CERT_FILE}`],
                keyShares: args.settings.keyShares,
                keyThreshold: args.settings.keyThreshold,
            },
            { parent: this, dependsOn: [answering] },
        );

        // The operator's Vault connection needs the CA secret before the chart makes it.
        const vsoCa = k3s.write(
            "vault-secrets-operator-ca",
            vaultSecretsOperatorTls(args.foundation.issuers.internalCa),
            [...args.foundation.ready],
        );
        k3s.write(
            "vault-secrets-operator",
            [vaultSecretsOperatorChart(this.address)],
            [certificateReady("vault-secrets-operator-ca", `${VSO_NAMESPACE}/${VSO_CA_SECRET}`, vsoCa)],
        );

        this.unsealKeys = bootstrap.unsealKeys;
        this.rootToken = bootstrap.rootToken;
        this.sealed = bootstrap.sealed;
        this.registerOutputs({ address: this.address, rootToken: this.rootToken, sealed: this.sealed });
    }
}
