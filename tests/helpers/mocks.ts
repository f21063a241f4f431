// Pulumi mocks that record every resource the program registers, for unit tests of the resource graph.
import * as pulumi from "@pulumi/pulumi";
import type { RawConfig } from "../../stacks/config";

export interface RecordedResource {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}

/** What a provider would add to a resource's state beyond its inputs (addresses, generated keys). */
export type MockOutputs = (resource: RecordedResource) => Record<string, unknown>;

export async function useMocks(
    stack: string,
    config: RawConfig,
    outputs: MockOutputs = () => ({}),
): Promise<RecordedResource[]> {
    const recorded: RecordedResource[] = [];
    pulumi.runtime.setAllConfig({ ...config.values }, [...config.secretKeys]);
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const resource = { type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> };
                recorded.push(resource);
                // Numeric, as Hetzner's are: other resources refer to them by number.
                return { id: String(recorded.length), state: { ...resource.inputs, ...outputs(resource) } };
            },
            call: (args) => {
                // Recorded so a test can show a program calls no data source (a preview without an API).
                recorded.push({
                    type: `invoke:${args.token}`,
                    name: args.token,
                    inputs: args.inputs as Record<string, unknown>,
                });
                return args.inputs as Record<string, unknown>;
            },
        },
        "peoples-cloud",
        stack,
        true,
    );
    return recorded;
}

/** Resolves an Output in a unit test, with whether it is secret. */
export function unwrap<T>(output: pulumi.Output<T>): Promise<{ value: T; secret: boolean }> {
    return new Promise((resolve) => {
        pulumi
            .all([output, pulumi.isSecret(output)])
            .apply(([value, secret]) => resolve({ value: value as T, secret }));
    });
}

/**
 * What each resource was told to depend on, through the layers' real `dependsOn`: pass `transformations` to
 * the components under test (their children inherit them); `after(name)` is every resource `name` waits
 * for, directly or through others (a component stands for all its children). Mocks do not see dependencies.
 */
export function dependencyRecorder(known: [pulumi.Resource, string][] = []) {
    const names = new Map<pulumi.Resource, string>(known);
    const direct = new Map<string, pulumi.Resource[]>();
    const transformations: pulumi.ResourceTransformation[] = [
        (args) => {
            names.set(args.resource, args.name);
            direct.set(args.name, (args.opts.dependsOn ?? []) as pulumi.Resource[]);
            return undefined;
        },
    ];
    const after = (name: string): Set<string> => {
        const out = new Set<string>();
        for (const dep of direct.get(name) ?? []) {
            const depName = names.get(dep) ?? "unknown";
            out.add(depName);
            for (const d of after(depName)) out.add(d);
        }
        return out;
    };
    return { transformations, after };
}
