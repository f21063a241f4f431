// A random secret made once and kept only in Pulumi's encrypted state, as `@pulumi/random`'s RandomPassword
// would, but through the dynamic-provider plugin @pulumi/pulumi ships (random's plugin cannot be built here).
import * as pulumi from "@pulumi/pulumi";

interface TokenInputs {
    bytes: number;
}

interface TokenOutputs extends TokenInputs {
    value: string;
}

const randomTokenProvider: pulumi.dynamic.ResourceProvider<TokenInputs, TokenOutputs> = {
    create(inputs) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- the provider is serialised
        const { randomBytes } = require("node:crypto") as typeof import("node:crypto");
        const value = randomBytes(inputs.bytes).toString("hex");
        return Promise.resolve({ id: `token-${inputs.bytes}`, outs: { ...inputs, value } });
    },
    diff(_id, olds, news) {
        const changed = olds.bytes !== news.bytes;
        return Promise.resolve({ changes: changed, replaces: changed ? ["bytes"] : [] });
    },
};

export class RandomToken extends pulumi.dynamic.Resource {
    /** Hex, twice as many characters as bytes; a secret output. */
    declare readonly value: pulumi.Output<string>;

    constructor(name: string, args: { bytes?: number } = {}, opts?: pulumi.CustomResourceOptions) {
        super(
            randomTokenProvider,
            name,
            { bytes: args.bytes ?? 32, value: undefined },
            {
                ...opts,
                additionalSecretOutputs: ["value"],
            },
            "infra",
            "RandomToken",
        );
    }
}
