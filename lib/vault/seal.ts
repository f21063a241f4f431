// Vault's initialisation and unsealing as resources, run with the Vault CLI through an operator: the first
// server initialised once (its unseal keys and root token become secret outputs), each server joined to the
// first's raft cluster and unsealed, its live seal status checked on every run.
import type * as pulumi from "@pulumi/pulumi";
import { DynamicResource, type Provider } from "../dynamic";
import { runVault, sealStatus, type VaultOperator, type VaultServer } from "./operator";

interface InitInputs {
    operator: VaultOperator;
    keyShares: number;
    keyThreshold: number;
}

interface InitOutputs extends InitInputs {
    unsealKeys: string[];
    rootToken: string;
}

export const vaultInitializationProvider: Provider<InitInputs, InitOutputs> = {
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

/**
 * Joins the server to the cluster when it is not initialised, then unseals it. In a bootstrap it resolves once
 * the server knows the active server (the next one can only join a leader that is active); after a restart
 * only once it is unsealed: when every server restarted (a power cut), none can elect a leader until enough
 * of them are unsealed.
 */
async function joinAndUnseal(inputs: UnsealInputs, bootstrap: boolean): Promise<UnsealOutputs> {
    const status = await sealStatus(inputs.operator);
    if (!status.initialized) {
        if (!inputs.joinAddress) {
            throw new Error(
                `vault unseal on ${inputs.operator.name}: the server is not initialised (its data is gone: after ` +
                    "the machines were reinstalled, bring it back from a backup with `peoples-cloud restore`)",
            );
        }
        await runVault(inputs.operator, "operator raft join", [
            "operator",
            "raft",
            "join",
            ...(inputs.joinFlags ?? []),
            inputs.joinAddress,
        ]);
    }
    await submitUnsealKeys(inputs.operator, inputs.unsealKeys, inputs.keyThreshold);
    // A server that just joined unseals once it has caught up.
    await waitUnsealed(inputs.operator, inputs.keyThreshold, { activeServer: bootstrap });
    // Undefined is not a value the engine's wire format carries.
    return {
        operator: inputs.operator,
        ...(inputs.joinAddress ? { joinAddress: inputs.joinAddress } : {}),
        sealed: false,
    };
}

/** Gives the server unseal keys, `keyThreshold` at most, until it is unsealed. */
export async function submitUnsealKeys(operator: VaultOperator, unsealKeys: string[], keyThreshold: number) {
    for (const key of unsealKeys.slice(0, keyThreshold)) {
        if (!(await sealStatus(operator)).sealed) break;
        await runVault(operator, "operator unseal", ["write", "-format=json", "sys/unseal", "key=-"], {
            stdin: `${key}\n`,
        });
    }
}

/** Waits until the server is unsealed and, by default, knows the cluster's active server; at most 60 s. */
export async function waitUnsealed(operator: VaultOperator, keyThreshold: number, options = { activeServer: true }) {
    for (let waited = 0; ; waited += 500) {
        const status = await sealStatus(operator);
        if (!status.sealed && (status.leaderAddress || !options.activeServer)) return;
        if (waited >= 60_000) {
            throw new Error(
                `vault unseal on ${operator.name}: ${status.sealed ? "still sealed" : "no active server"} ` +
                    `60 s after ${keyThreshold} keys`,
            );
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
}

export const vaultUnsealProvider: Provider<UnsealInputs, UnsealOutputs> = {
    async create(inputs) {
        return { id: inputs.operator.name, outs: await joinAndUnseal(inputs, true) };
    },
    /** The live seal status decides: a server that restarted sealed is a change to apply. */
    async diff(_id, olds, news) {
        if (JSON.stringify(olds.operator) !== JSON.stringify(news.operator)) return { changes: true };
        const status = await sealStatus(news.operator);
        return { changes: status.sealed || !status.initialized };
    },
    async update(_id, _olds, news) {
        return { outs: await joinAndUnseal(news, false) };
    },
};

export class VaultInitialization extends DynamicResource {
    declare readonly unsealKeys: pulumi.Output<string[]>;
    declare readonly rootToken: pulumi.Output<string>;
    constructor(
        name: string,
        args: Omit<InitInputs, "operator"> & { operator: VaultServer },
        opts: pulumi.CustomResourceOptions,
    ) {
        super(
            "vault-initialization",
            { module: "vault", name: "Initialization" },
            name,
            { ...args, unsealKeys: undefined, rootToken: undefined },
            { ...opts, additionalSecretOutputs: ["unsealKeys", "rootToken", "operator"] },
        );
    }
}

export class VaultUnseal extends DynamicResource {
    declare readonly sealed: pulumi.Output<boolean>;
    constructor(name: string, args: pulumi.Inputs, opts: pulumi.CustomResourceOptions) {
        // The operator may hold an SSH key.
        super(
            "vault-unseal",
            { module: "vault", name: "Unseal" },
            name,
            { ...args, sealed: undefined },
            { ...opts, additionalSecretOutputs: ["operator"] },
        );
    }
}
