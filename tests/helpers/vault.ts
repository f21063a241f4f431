// The Vault layer's bootstrap and configuration as a test stack's program: the `bao` CLI against each OpenBao
// raft server, run here or over SSH on a test host (in a cluster: `k3s kubectl exec -i -n vault vault-N --
// vault` on the first server).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import type { PulumiFn } from "@pulumi/pulumi/automation";
import { VaultBootstrap } from "../../components/vault/bootstrap";
import { STORAGE_SERVICES, VaultConfiguration } from "../../components/vault/config";
import { tokenFromStdin, type VaultServer } from "../../lib/vault/operator";
import type { SshConnection } from "../../lib/ssh";
import { type RaftServer, toolsBinDir } from "@peoples-cloud/testkit";

export interface VaultProgramOptions {
    /** Run the CLI over SSH on this host (a secret: it holds the key). */
    ssh?: () => pulumi.Input<SshConnection>;
    /** Configure Vault too, as the layer does, with the audit device writing here. */
    auditFile?: string;
    /** More of the program once Vault is configured (as a later layer uses it): its resources and outputs. */
    then?: (vault: {
        operator: VaultServer;
        adminToken: pulumi.Output<string>;
        configuration: pulumi.Resource;
    }) => Record<string, unknown>;
}

/**
 * The Vault layer's bootstrap, and with `auditFile` its configuration (through the first server's operator,
 * the root token revoked last), against OpenBao raft servers as the layer runs them against the pods.
 */
export function vaultProgram(servers: RaftServer[], options: VaultProgramOptions = {}): PulumiFn {
    const bao = path.join(toolsBinDir("servers"), "bao");
    return () => {
        const via = options.ssh?.();
        const operators = servers.map((s) => ({
            name: s.nodeId,
            command: tokenFromStdin(bao),
            env: { BAO_ADDR: s.url, VAULT_ADDR: s.url },
            ...(via ? { ssh: via } : {}),
        }));
        const vault = new VaultBootstrap("vault", {
            servers: operators,
            joinAddress: servers[0].url,
            keyShares: 3,
            keyThreshold: 2,
        });
        const outputs = { rootToken: vault.rootToken, unsealKeys: vault.unsealKeys, sealed: vault.sealed };
        if (!options.auditFile) return Promise.resolve(outputs);
        const config = new VaultConfiguration(
            "vault-config",
            {
                server: operators[0],
                rootToken: vault.rootToken,
                sealed: vault.sealed,
                apps: STORAGE_SERVICES,
                auditFile: options.auditFile,
                // A stand-in for the cluster's API and CA: this Vault runs outside any cluster.
                kubernetes: { host: "https://kubernetes.test:6443", caCert: selfSignedCert(servers[0].dir) },
            },
            { dependsOn: [vault] },
        );
        const more = options.then?.({ operator: operators[0], adminToken: config.adminToken, configuration: config });
        return Promise.resolve({ ...outputs, adminToken: config.adminToken, ...more });
    };
}

/** Made once per server folder: every run of the program passes the same CA. */
function selfSignedCert(dir: string): string {
    const [key, cert] = [path.join(dir, "k8s-ca.key"), path.join(dir, "k8s-ca.crt")];
    if (existsSync(cert)) return readFileSync(cert, "utf8");
    execFileSync(
        "openssl",
        [
            ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
            ...["-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=kubernetes-test-ca"],
        ],
        { stdio: "ignore" },
    );
    return readFileSync(cert, "utf8");
}

/** One call of Vault's HTTP API at `url` with `token`: the status and the answer's JSON (Vault may answer none). */
export async function vaultCall<Body = Record<string, unknown>>(
    url: string,
    token: string,
    method: string,
    apiPath: string,
    body?: unknown,
): Promise<{ status: number; body: Body }> {
    const res = await fetch(`${url}/v1/${apiPath}`, {
        method,
        headers: { "X-Vault-Token": token },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Body };
}
