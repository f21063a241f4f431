// Pulumi mocks that record every resource the program registers, for unit tests of the resource graph.
import * as pulumi from "@pulumi/pulumi";
import type { RawConfig } from "../../stacks/config";

export interface RecordedResource {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}

export async function useMocks(stack: string, config: RawConfig): Promise<RecordedResource[]> {
    const recorded: RecordedResource[] = [];
    pulumi.runtime.setAllConfig({ ...config.values }, [...config.secretKeys]);
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const inputs = args.inputs as Record<string, unknown>;
                recorded.push({ type: args.type, name: args.name, inputs });
                return { id: `${args.name}-id`, state: inputs };
            },
            call: (args) => args.inputs as Record<string, unknown>,
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
