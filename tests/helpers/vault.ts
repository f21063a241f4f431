// The Vault bootstrap as a test stack's program: the `bao` CLI against each OpenBao raft server, run here or
// over SSH on a test host (in a cluster: `k3s kubectl exec -i -n vault vault-N -- vault` on the first server).
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import type { PulumiFn } from "@pulumi/pulumi/automation";
import { VaultBootstrap } from "../../components/vault/bootstrap";
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
                command: [bao],
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
