// A random secret made once and kept only in Pulumi's encrypted state, as `@pulumi/random`'s RandomPassword
// would (random's plugin cannot be built on this machine; see the README's "Seams").
import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { DynamicResource, type Provider } from "./dynamic";

interface TokenInputs {
    bytes: number;
}

interface TokenOutputs extends TokenInputs {
    value: string;
}

export const randomTokenProvider: Provider<TokenInputs, TokenOutputs> = {
    create(inputs) {
        const value = randomBytes(inputs.bytes).toString("hex");
        return Promise.resolve({ id: `token-${inputs.bytes}`, outs: { ...inputs, value } });
    },
    diff(_id, olds, news) {
        const changed = olds.bytes !== news.bytes;
        return Promise.resolve({ changes: changed, replaces: changed ? ["bytes"] : [] });
    },
};

export class RandomToken extends DynamicResource {
    /** Hex, twice as many characters as bytes; a secret output. */
    declare readonly value: pulumi.Output<string>;

    constructor(name: string, args: { bytes?: number } = {}, opts?: pulumi.CustomResourceOptions) {
        super(
            "random-token",
            { module: "infra", name: "RandomToken" },
            name,
            { bytes: args.bytes ?? 32, value: undefined },
            {
                ...opts,
                additionalSecretOutputs: ["value"],
            },
        );
    }
}
