// Vault from a fresh install to unsealed, with nobody at a terminal: the first server is initialised once
// (its unseal keys and root token become secret outputs, held only in Pulumi's encrypted state), the others
// join its raft cluster, and every server is unsealed. Each `pulumi up` checks the live seal status, so a
// restarted (sealed) pod is unsealed again by the next `up`.
import * as pulumi from "@pulumi/pulumi";
import { formerly } from "../../lib/aliases";
import type { VaultServer } from "../../lib/vault/operator";
import { VaultInitialization, VaultUnseal } from "../../lib/vault/seal";

export interface VaultBootstrapArgs {
    /** One per Vault server; the first is initialised, the others join it. */
    readonly servers: readonly VaultServer[];
    /** The API address under which the other servers reach the first (e.g. its pod's DNS name). */
    readonly joinAddress: pulumi.Input<string>;
    /** Flags for `operator raft join` (the leader's CA when it serves TLS from a private CA). */
    readonly joinFlags?: readonly string[];
    /** Shamir split of the unseal keys: how many are made, and how many unseal. */
    readonly keyShares: number;
    readonly keyThreshold: number;
}

export class VaultBootstrap extends pulumi.ComponentResource {
    /** Secret: the unseal keys, only in Pulumi's encrypted state. */
    readonly unsealKeys: pulumi.Output<string[]>;
    /** Secret: the initial root token, for the configuration that follows. */
    readonly rootToken: pulumi.Output<string>;
    /** Per server, false once it is unsealed. */
    readonly sealed: pulumi.Output<boolean[]>;

    constructor(name: string, args: VaultBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:vault:VaultBootstrap", name, {}, formerly("peoples-cloud:vault:Bootstrap", opts));
        if (args.servers.length === 0) throw new Error(`${name}: at least one Vault server is needed`);
        const [first, ...others] = args.servers;
        // Protected: destroying it would drop the only copy of the unseal keys from the stack.
        const init = new VaultInitialization(
            `${name}-init`,
            { operator: first, keyShares: args.keyShares, keyThreshold: args.keyThreshold },
            { parent: this, protect: true },
        );
        const unseal = (server: VaultServer, joinAddress: pulumi.Input<string> | undefined, after: pulumi.Resource[]) =>
            new VaultUnseal(
                `${name}-unseal-${server.name}`,
                {
                    operator: server,
                    joinAddress,
                    ...(joinAddress && args.joinFlags ? { joinFlags: args.joinFlags } : {}),
                    unsealKeys: init.unsealKeys,
                    keyThreshold: args.keyThreshold,
                },
                { parent: this, dependsOn: after },
            );
        // One at a time: raft takes joins best in sequence, each after the previous server is unsealed.
        const leader = unseal(first, undefined, [init]);
        const followers: VaultUnseal[] = [];
        for (const server of others) {
            followers.push(unseal(server, args.joinAddress, [followers.at(-1) ?? leader]));
        }
        this.unsealKeys = pulumi.secret(init.unsealKeys);
        this.rootToken = pulumi.secret(init.rootToken);
        this.sealed = pulumi.all([leader, ...followers].map((u) => u.sealed));
        this.registerOutputs({ unsealKeys: this.unsealKeys, rootToken: this.rootToken, sealed: this.sealed });
    }
}
