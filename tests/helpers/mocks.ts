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
