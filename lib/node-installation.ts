// Which installation of its operating system a node runs, told by a mark the program leaves on it
// (/var/lib/peoples-cloud/installation). A machine reinstalled, or replaced by a new one at the same name, has
// no mark: the resource's diff sees that on the next preview or up, the generation grows by one, and every
// remote step of that node that is given the generation (RemoteScript's `installation`) runs again — its
// WireGuard key made anew, K3s installed again — where they would otherwise count as done.
import type * as pulumi from "@pulumi/pulumi";
import { DynamicResource, type Provider } from "./dynamic";
import { runOverSsh, type SshConnection } from "./remote-script";
import { scriptsIn } from "./scripts";

const markScript = scriptsIn(__dirname)("installation-mark.sh");

interface InstallationInputs {
    node: string;
    connection: SshConnection;
}

interface InstallationOutputs {
    node: string;
    /** 1 for the installation the node had when it joined; one more for each reinstall seen since. */
    generation: number;
}

/** The node's mark: its generation, or undefined when it has none; with `write`, written first. */
export async function installationMark(
    node: { name: string; connection: SshConnection },
    write?: number,
): Promise<number | undefined> {
    const out = await runOverSsh({
        node: node.name,
        step: write === undefined ? "read the installation mark" : "write the installation mark",
        connection: node.connection,
        script: markScript,
        env: write === undefined ? {} : { INSTALLATION_GENERATION: String(write) },
        stdin: "",
    });
    const generation = Number.parseInt(out.trim(), 10);
    return Number.isInteger(generation) && generation > 0 ? generation : undefined;
}

export const nodeInstallationProvider: Provider<InstallationInputs, InstallationOutputs> = {
    /** A node that has a mark already (its stack's state was lost and recovered) keeps its generation. */
    async create(inputs) {
        const node = { name: inputs.node, connection: inputs.connection };
        const generation = (await installationMark(node)) ?? (await installationMark(node, 1))!;
        return { id: inputs.node, outs: { node: inputs.node, generation } };
    },
    /**
     * The mark read live: missing or not this generation is a change. A node that cannot be reached is left as
     * it is (its steps, if any run, say so): a preview must not fail on a machine that is switched off.
     */
    async diff(_id, olds, news) {
        if (olds.node !== news.node) return { changes: true };
        const mark = await installationMark({ name: news.node, connection: news.connection }).catch(
            () => olds.generation,
        );
        return { changes: mark !== olds.generation };
    },
    async update(_id, olds, news) {
        const node = { name: news.node, connection: news.connection };
        const mark = (await installationMark(node)) ?? 0;
        const generation = Math.max(olds.generation, mark) + 1;
        await installationMark(node, generation);
        return { outs: { node: news.node, generation } };
    },
};

export class NodeInstallation extends DynamicResource {
    declare readonly generation: pulumi.Output<number>;
    constructor(
        name: string,
        args: { node: string; connection: pulumi.Input<SshConnection> },
        opts?: pulumi.CustomResourceOptions,
    ) {
        super(
            "node-installation",
            { module: "infra", name: "NodeInstallation" },
            name,
            {
                ...args,
                generation: undefined,
            },
            opts,
        );
    }
}
