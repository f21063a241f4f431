// The Vault bootstrap as a test stack's program: the `bao` CLI against each OpenBao raft server, run here or
// over SSH on a test host (in a cluster: `k3s kubectl exec -i -n vault vault-N -- vault` on the first server).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import type { PulumiFn } from "@pulumi/pulumi/automation";
import { VaultBootstrap } from "../../components/vault/bootstrap";
import { STORAGE_SERVICES, VaultConfiguration } from "../../components/vault/config";
import { tokenFromStdin } from "../../components/vault/operator";
import type { SshConnection } from "../../components/infra/ssh";
import { toolsBinDir } from "./engine";
import type { RaftServer } from "./servers";

export function bootstrapProgram(servers: RaftServer[], ssh?: () => pulumi.Input<SshConnection>): PulumiFn {
    const bao = path.join(toolsBinDir("servers"), "bao");
    return () => {
        const via = ssh?.();
        const vault = new VaultBootstrap("vault", {
            servers: servers.map((s) => ({
                name: s.nodeId,
                command: tokenFromStdin(bao),
                env: { BAO_ADDR: s.url, VAULT_ADDR: s.url },
                ...(via ? { ssh: via } : {}),
            })),
            joinAddress: servers[0].url,
            keyShares: 3,
            keyThreshold: 2,
        });
        return Promise.resolve({ rootToken: vault.rootToken, unsealKeys: vault.unsealKeys, sealed: vault.sealed });
    };
}

/**
 * The Vault layer's bootstrap and configuration against one OpenBao raft server, as the layer runs them
 * against the pods: the configuration through the same operator (here the local CLI), the root token revoked.
 */
export function configuredVaultProgram(server: RaftServer, auditFile: string): PulumiFn {
    const bao = path.join(toolsBinDir("servers"), "bao");
    return () => {
        const operator = { name: server.nodeId, command: tokenFromStdin(bao), env: { BAO_ADDR: server.url } };
        const vault = new VaultBootstrap("vault", {
            servers: [operator],
            joinAddress: server.url,
            keyShares: 3,
            keyThreshold: 2,
        });
        const config = new VaultConfiguration("vault-config", {
            server: operator,
            rootToken: vault.rootToken,
            sealed: vault.sealed,
            apps: STORAGE_SERVICES,
            auditFile,
            // A stand-in for the cluster's API and CA: this Vault runs outside any cluster.
            kubernetes: { host: "https://kubernetes.test:6443", caCert: selfSignedCert(server.dir) },
        });
        return Promise.resolve({
            rootToken: vault.rootToken,
            unsealKeys: vault.unsealKeys,
            adminToken: config.adminToken,
            sealed: vault.sealed,
        });
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
