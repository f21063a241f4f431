// Steps on the first K3s server that the cluster layers share: write a manifest into K3s's auto-deploy folder
// (emptied on delete, so K3s prunes what it applied), and wait until what the next step needs is there. The
// seam where @pulumi/kubernetes's resources (with the infra layer's kubernetesProvider()) would replace it.
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";
import type { KubeObject } from "./kube";
import { type RemoteHost, RemoteScript } from "./remote-script";
import { scriptsIn } from "./scripts";

const script = scriptsIn(__dirname);

/** A manifest file as K3s reads it: YAML documents, `---` between them. */
function renderManifest(objects: KubeObject[]): string {
    return objects.map((o) => yaml.dump(o, { lineWidth: -1, noRefs: true })).join("---\n");
}

/** What k3s-wait.sh waits for: K3S_WAIT_CRDS, K3S_WAIT_DEPLOYMENTS, K3S_WAIT_CERTIFICATES, … */
export type WaitFor = Record<`K3S_WAIT_${string}`, string>;

export class K3sManifests {
    constructor(
        private readonly parent: pulumi.Resource,
        private readonly prefix: string,
        private readonly server: RemoteHost,
    ) {}

    /** Writes `peoples-cloud-<file>.yaml` on the server once `dependsOn` is done. */
    write(file: string, objects: pulumi.Input<KubeObject[]>, dependsOn: pulumi.Resource[]): RemoteScript {
        return new RemoteScript(
            `${this.prefix}-${file}`,
            {
                node: this.server.name,
                connection: this.server.connection,
                installation: this.server.installation,
                step: `write the ${file} manifest`,
                script: script("k3s-manifest.sh"),
                env: { K3S_MANIFEST: `peoples-cloud-${file}` },
                stdin: Array.isArray(objects)
                    ? renderManifest(objects)
                    : pulumi.output(objects).apply((o) => renderManifest(o as KubeObject[])),
                deleteScript: script("k3s-manifest-delete.sh"),
            },
            { parent: this.parent, dependsOn },
        );
    }

    /** Waits after the given manifests, and again whenever one of them changes. */
    wait(what: string, waitFor: WaitFor, after: RemoteScript[]): RemoteScript {
        return new RemoteScript(
            `${this.prefix}-${what}-ready`,
            {
                node: this.server.name,
                connection: this.server.connection,
                installation: this.server.installation,
                step: `wait for ${what}`,
                script: script("k3s-wait.sh"),
                env: waitFor,
                triggers: after.map((m) => m.stdin),
            },
            { parent: this.parent, dependsOn: after },
        );
    }
}
