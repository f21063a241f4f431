// The program's own resources (remote steps, random secrets, Vault's bootstrap and writes) run in the engine's
// dynamic-provider plugin, which @pulumi/pulumi ships. That plugin takes each resource's provider from the
// text of its `__provider` property. `pulumi.dynamic.Resource` puts a serialised copy of the provider's code
// there — in every resource's inputs and outputs, most of a checkpoint, with whatever its closure captured.
// Here the text only names the provider, and the plugin loads it by that name from this package
// (`@peoples-cloud/lib`, a workspace of the repository): the state holds inputs and outputs, no code.
//
// This is the one seam where a provider plugin would take over: the same providers behind
// `@pulumi/pulumi/provider`'s `main()`, or the official providers the README names per resource.
import * as pulumi from "@pulumi/pulumi";

const PROVIDER_KEY = "__provider";

/** What the plugin evaluates: loads TypeScript, then the named provider from `providers.ts`. */
export function providerLoader(name: string): string {
    return (
        `exports.handler = () => { require("tsx/cjs"); ` +
        `return require("@peoples-cloud/lib/providers").providers[${JSON.stringify(name)}]; };`
    );
}

/** A provider whose `diff` says what its inputs' changes mean; `update` is optional where none updates. */
export type Provider<I, O> = Required<Pick<pulumi.dynamic.ResourceProvider<I, O>, "create" | "diff">> &
    Omit<pulumi.dynamic.ResourceProvider<I, O>, "create" | "diff">;

/**
 * The provider as the plugin runs it. A resource whose state still holds a serialised provider (written by
 * versions before this one) is updated once to hold the loader instead: when nothing but the provider text
 * changed, the update keeps its outputs and runs nothing on the node or in Vault.
 */
export function loadable<I, O>(provider: Provider<I, O>): pulumi.dynamic.ResourceProvider<I, O> {
    const providerText = (props: unknown) => (props as Record<string, unknown>)[PROVIDER_KEY];
    return {
        ...provider,
        async diff(id, olds, news) {
            const result = await provider.diff(id, olds, news);
            if (result.changes === false && providerText(olds) !== providerText(news)) {
                return { ...result, changes: true };
            }
            return result;
        },
        async update(id, olds, news) {
            // Asked again only when the provider text moved: a provider's diff may read live state (a seal
            // status, a token's TTL), which every other update need not pay for twice.
            if (providerText(olds) !== providerText(news) && (await provider.diff(id, olds, news)).changes === false) {
                const outs = { ...(olds as Record<string, unknown>) };
                delete outs[PROVIDER_KEY];
                return { outs: outs as O };
            }
            if (!provider.update) throw new Error(`${id}: this resource is replaced, never updated`);
            return provider.update(id, olds, news);
        },
    };
}

/** A resource of the dynamic-provider plugin whose provider is `providers[provider]`. */
export abstract class DynamicResource extends pulumi.CustomResource {
    protected constructor(
        provider: string,
        type: { module: string; name: string },
        name: string,
        props: pulumi.Inputs,
        opts?: pulumi.CustomResourceOptions,
    ) {
        super(
            `pulumi-nodejs:dynamic/${type.module}:${type.name}`,
            name,
            { ...props, [PROVIDER_KEY]: providerLoader(provider) },
            opts,
        );
    }
}
