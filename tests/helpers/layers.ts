// The program's layers composed under mocks as program.ts composes them, for the unit tests of one layer: the
// dependencies of every resource recorded (`after`), and the names of the protected ones.
import type * as pulumi from "@pulumi/pulumi";
import { AppsLayer } from "../../components/apps/layer";
import { BackupLayer } from "../../components/backup/layer";
import { FoundationLayer } from "../../components/foundation/layer";
import { InfraLayer } from "../../components/infra/layer";
import { VaultLayer } from "../../components/vault/layer";
import { appsArgs, backupArgs, foundationArgs, infraArgs, vaultArgs } from "../../program";
import type { PlatformConfig } from "../../stacks/config";
import { dependencyRecorder } from "./mocks";

export function composeLayers(config: PlatformConfig) {
    const infra = new InfraLayer("infra", infraArgs(config));
    const deps = dependencyRecorder([[infra.cluster!, "infra-k3s"]]);
    const protectedNames: string[] = [];
    const transformations: pulumi.ResourceTransformation[] = [
        ...deps.transformations,
        (args) => {
            if (args.opts.protect) protectedNames.push(args.name);
            return undefined;
        },
    ];
    const foundation = new FoundationLayer("crds", foundationArgs(config, infra.cluster!), { transformations });
    const vault = new VaultLayer("vault", vaultArgs(config, infra, foundation), { transformations });
    const apps = new AppsLayer("apps", appsArgs(config, infra, foundation, vault), { transformations });
    /** The backup layer on top, for the tests that need it. */
    const backup = () =>
        new BackupLayer("backup", backupArgs(config, infra, foundation, vault, apps), { transformations });
    return { apps, backup, after: deps.after, protectedNames };
}
