// The whole program of a stack under mocks, as the engine would run it from Pulumi.<stack>.yaml.
import { platform } from "../../program";
import { settled, useMocks, type RecordedResource } from "./mocks";
import { rawConfig, stackFileValues } from "./stackConfig";

/** The secrets each stack file leaves to `pulumi config set --secret`. */
const stackSecrets: Record<string, Record<string, string>> = {
    dev: { "peoples-cloud:sshPrivateKey": "test-only" },
    prod: { "hcloud:token": "test-only" },
};

/**
 * Runs `platform()` for a stack file's settings, some replaced, with its secrets and `secrets`, and returns every
 * resource it registered.
 */
export async function programResources(
    stack: string,
    settings: Record<string, unknown> = {},
    secrets: Record<string, string> = {},
): Promise<RecordedResource[]> {
    const recorded = await useMocks(
        stack,
        rawConfig({ ...stackFileValues(stack), ...settings }, { ...stackSecrets[stack], ...secrets }),
    );
    platform();
    await settled();
    return recorded;
}
