// Vault from a fresh install to unsealed, with nobody at a terminal: the first server is initialised once
// (its unseal keys and root token become secret outputs, held only in Pulumi's encrypted state), the others
// join its raft cluster, and every server is unsealed. Each `pulumi up` checks the live seal status, so a
// restarted (sealed) pod is unsealed again by the next `up`.
import * as pulumi from "@pulumi/pulumi";
import type { SshConnection } from "../infra/ssh";
import { runVault, sealStatus, type VaultOperator } from "./operator";

/** A Vault server as the program knows it: its SSH connection, when it has one, is a secret output. */
export type VaultServer = Omit<VaultOperator, "ssh"> & { ssh?: pulumi.Input<SshConnection> };

interface InitInputs {
    operator: VaultOperator;
    keyShares: number;
    keyThreshold: number;
}

interface InitOutputs extends InitInputs {
    unsealKeys: string[];
    rootToken: string;
}

const initProvider: pulumi.dynamic.ResourceProvider<InitInputs, InitOutputs> = {
    async create(inputs) {
        const status = await sealStatus(inputs.operator);
        if (status.initialized) {
            throw new Error(
                `vault init on ${inputs.operator.name}: it is initialised already and its unseal keys are not in ` +
                    "this stack; start from an empty Vault, or import the keys into the stack's secret config",
            );
        }
        const out = await runVault(inputs.operator, "operator init", [
            "operator",
            "init",
            "-format=json",
            `-key-shares=${inputs.keyShares}`,
            `-key-threshold=${inputs.keyThreshold}`,
        ]);
        const init = JSON.parse(out) as { unseal_keys_b64: string[]; root_token: string };
        return {
            id: inputs.operator.name,
            outs: { ...inputs, unsealKeys: init.unseal_keys_b64, rootToken: init.root_token },
        };
    },
    diff(_id, olds, news) {
        const rekey = olds.keyShares !== news.keyShares || olds.keyThreshold !== news.keyThreshold;
        const moved = JSON.stringify(olds.operator) !== JSON.stringify(news.operator);
        return Promise.resolve({ changes: rekey || moved });
    },
    update(_id, olds, news) {
        if (olds.keyShares !== news.keyShares || olds.keyThreshold !== news.keyThreshold) {
            return Promise.reject(
                new Error(
                    `vault init on ${news.operator.name}: key shares and threshold are fixed at initialisation ` +
                        `(${olds.keyShares}/${olds.keyThreshold}); change them with \`vault operator rekey\``,
                ),
            );
        }
        return Promise.resolve({ outs: { ...olds, operator: news.operator } });
    },
};

interface UnsealInputs {
    operator: VaultOperator;
    /** The API address of the initialised server a new server joins; absent for that server itself. */
    joinAddress?: string;
    /** Flags for `operator raft join`, such as the leader's CA (`-leader-ca-cert=@<file on the server>`). */
    joinFlags?: string[];
    unsealKeys: string[];
    keyThreshold: number;
}

interface UnsealOutputs {
    operator: VaultOperator;
    joinAddress?: string;
    sealed: boolean;
}

async function joinAndUnseal(inputs: UnsealInputs): Promise<UnsealOutputs> {
    let status = await sealStatus(inputs.operator);
    if (!status.initialized) {
        if (!inputs.joinAddress) {
            throw new Error(`vault unseal on ${inputs.operator.name}: the server is not initialised`);
        }
        await runVault(inputs.operator, "operator raft join", [
            "operator",
            "raft",
            "join",
            ...(inputs.joinFlags ?? []),
            inputs.joinAddress,
        ]);
    }
    for (const key of inputs.unsealKeys.slice(0, inputs.keyThreshold)) {
        status = await sealStatus(inputs.operator);
        if (!status.sealed) break;
        await runVault(inputs.operator, "operator unseal", ["write", "-format=json", "sys/unseal", "key=-"], {
            stdin: `${key}\n`,
        });
    }
    // A server that just joined unseals once it has caught up; either way it is done once it knows the
    // cluster's active server (the next one can only join a leader that is active).
    for (let waited = 0; ; waited += 500) {
        status = await sealStatus(inputs.operator);
        if (!status.sealed && status.leaderAddress) break;
        if (waited >= 60_000) {
            throw new Error(
                `vault unseal on ${inputs.operator.name}: ${status.sealed ? "still sealed" : "no active server"} ` +
                    `60 s after ${inputs.keyThreshold} keys`,
            );
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // Undefined is not a value the engine's wire format carries.
    return {
        operator: inputs.operator,
        ...(inputs.joinAddress ? { joinAddress: inputs.joinAddress } : {}),
        sealed: false,
    };
}

const unsealProvider: pulumi.dynamic.ResourceProvider<UnsealInputs, UnsealOutputs> = {
    async create(inputs) {
        return { id: inputs.operator.name, outs: await joinAndUnseal(inputs) };
    },
    /** The live seal status decides: a server that restarted sealed is a change to apply. */
    async diff(_id, olds, news) {
        if (JSON.stringify(olds.operator) !== JSON.stringify(news.operator)) return { changes: true };
        const status = await sealStatus(news.operator);
        return { changes: status.sealed || !status.initialized };
    },
    async update(_id, _olds, news) {
        return { outs: await joinAndUnseal(news) };
    },
};

class VaultInitialization extends pulumi.dynamic.Resource {
    declare readonly unsealKeys: pulumi.Output<string[]>;
    declare readonly rootToken: pulumi.Output<string>;
    constructor(
        name: string,
        args: Omit<InitInputs, "operator"> & { operator: VaultServer },
        opts: pulumi.CustomResourceOptions,
    ) {
        super(
            initProvider,
            name,
            { ...args, unsealKeys: undefined, rootToken: undefined },
            { ...opts, additionalSecretOutputs: ["unsealKeys", "rootToken", "operator"] },
            "vault",
            "Initialization",
        );
    }
}

class VaultUnseal extends pulumi.dynamic.Resource {
    declare readonly sealed: pulumi.Output<boolean>;
    constructor(name: string, args: pulumi.Inputs, opts: pulumi.CustomResourceOptions) {
        // The operator may hold an SSH key.
        super(
            unsealProvider,
            name,
            { ...args, sealed: undefined },
            { ...opts, additionalSecretOutputs: ["operator"] },
            "vault",
            "Unseal",
        );
    }
}

export interface VaultBootstrapArgs {
    /** One per Vault server; the first is initialised, the others join it. */
    servers: VaultServer[];
    /** The API address under which the other servers reach the first (e.g. its pod's DNS name). */
    joinAddress: pulumi.Input<string>;
    /** Flags for `operator raft join` (the leader's CA when it serves TLS from a private CA). */
    joinFlags?: string[];
    keyShares: number;
    keyThreshold: number;
}

export class VaultBootstrap extends pulumi.ComponentResource {
    /** Secret: the unseal keys, only in Pulumi's encrypted state. */
    readonly unsealKeys: pulumi.Output<string[]>;
    /** Secret: the initial root token, for the configuration that follows. */
    readonly rootToken: pulumi.Output<string>;
    /** Per server, false once it is unsealed. */
    readonly sealed: pulumi.Output<boolean[]>;

    constructor(name: string, args: VaultBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("peoples-cloud:vault:Bootstrap", name, {}, opts);
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
