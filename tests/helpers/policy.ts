// Runs the pack's rules on hand-made resources, without the engine (the pack's index.ts starts a server).
import * as fs from "node:fs";
import * as path from "node:path";
import type {
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";
import { repoRoot } from "./stackConfig";

export interface TestResource {
    type: string;
    props: Record<string, unknown>;
    name?: string;
}

type Config = Record<string, unknown>;

function common(r: TestResource, config: Config) {
    const name = r.name ?? "test";
    return {
        type: r.type,
        props: r.props,
        name,
        urn: `urn:pulumi:test::peoples-cloud::${r.type}::${name}`,
        getConfig: () => config,
        isType: () => false,
        asType: () => undefined,
    };
}

export function resourceViolations(policy: ResourceValidationPolicy, r: TestResource, config: Config = {}): string[] {
    const found: string[] = [];
    const validate = policy.validateResource ?? [];
    for (const fn of Array.isArray(validate) ? validate : [validate]) {
        void fn(common(r, config) as unknown as ResourceValidationArgs, (message) => found.push(message));
    }
    return found;
}

export function stackViolations(
    policy: StackValidationPolicy,
    resources: TestResource[],
    config: Config = {},
): string[] {
    const found: string[] = [];
    const args = {
        resources: resources.map((r) => common(r, config) as unknown as PolicyResource),
        getConfig: () => config,
    } as unknown as StackValidationArgs;
    void policy.validateStack(args, (message) => found.push(message));
    return found;
}

export type PolicyConfigFile = Record<string, string | ({ enforcementLevel?: string } & Config)>;

export function policyConfig(stack: string): PolicyConfigFile {
    return JSON.parse(
        fs.readFileSync(path.join(repoRoot, "policy", "config", `${stack}.json`), "utf8"),
    ) as PolicyConfigFile;
}

/** A rule's enforcement level and settings for a stack, as the engine computes them from the config file. */
export function ruleSettings(
    file: PolicyConfigFile,
    policy: { name: string; enforcementLevel?: string },
): { level: string; config: Config } {
    const entry = file[policy.name];
    if (typeof entry === "string") return { level: entry, config: {} };
    const { enforcementLevel, ...config } = entry ?? {};
    return { level: enforcementLevel ?? policy.enforcementLevel ?? "advisory", config };
}
