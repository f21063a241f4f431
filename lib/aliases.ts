// A component renamed keeps its resources: its URN, and through it every child's, answers to the old type too.
import type * as pulumi from "@pulumi/pulumi";

/** `opts` with an alias of the type the component had before it was renamed. */
export function formerly(type: string, opts?: pulumi.ComponentResourceOptions): pulumi.ComponentResourceOptions {
    return { ...opts, aliases: [...(opts?.aliases ?? []), { type }] };
}
