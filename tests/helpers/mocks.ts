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

/** Calls the mocks have answered, over every test: `settled` waits until a turn adds none. */
let answered = 0;

/**
 * Sets mocks that record every resource registered and every data source called, once registrations left
 * over from a previous test have settled (they would be answered by these mocks otherwise).
 */
export async function useMocks(
    stack: string,
    config: RawConfig,
    outputs: MockOutputs = () => ({}),
): Promise<RecordedResource[]> {
    await settled();
    const recorded: RecordedResource[] = [];
    pulumi.runtime.setAllConfig({ ...config.values }, [...config.secretKeys]);
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                answered++;
                const resource = { type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> };
                recorded.push(resource);
                // Numeric, as Hetzner's are: other resources refer to them by number.
                return { id: String(recorded.length), state: { ...resource.inputs, ...outputs(resource) } };
            },
            call: (args) => {
                answered++;
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

/**
 * Waits until the mocked program's registrations have settled: every resource it started to register has
 * been answered and its outputs resolved, and so has every resource an `apply` on those outputs started, however
 * deep the chain. The runtime holds a promise per registration or call in flight (`rpcKeepAlive`, taken when a
 * resource is constructed, released once its outputs are resolved); `waitForRPCs`, which
 * `pulumi.runtime.disconnect` awaits before closing, resolves when none is left. A registration started by the
 * last outputs resolved is begun a turn later: so wait again until a whole turn of the event loop (the mocks
 * answer in promises, no timer anywhere) adds no call to the mocks.
 */
export async function settled(): Promise<void> {
    for (;;) {
        const before = answered;
        await waitForRPCs();
        await new Promise((resolve) => setImmediate(resolve));
        if (answered === before) return;
    }
}

/** `pulumi.runtime.waitForRPCs`: exported by the runtime, but marked internal, so not in its type declarations. */
function waitForRPCs(): Promise<void> {
    const wait = (pulumi.runtime as { waitForRPCs?: () => Promise<void> }).waitForRPCs;
    if (typeof wait !== "function") {
        throw new Error("@pulumi/pulumi no longer exports runtime.waitForRPCs: tests/helpers/mocks.ts settled()");
    }
    return wait();
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
