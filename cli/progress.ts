// What a person sees while the engine works: one line per resource step as the engine reports it, a line
// every half minute naming what is still running, warnings, errors and policy violations. Never the engine's
// debug diagnostics: @pulumi/pulumi puts decrypted secret outputs in them (README: "Troubleshooting").
import type { EngineEvent } from "@pulumi/pulumi/automation";

const verbs: Record<string, [planned: string, running: string, done: string]> = {
    create: ["create", "creating", "created"],
    update: ["update", "updating", "updated"],
    delete: ["delete", "deleting", "deleted"],
    replace: ["replace", "replacing", "replaced"],
    "create-replacement": ["create a replacement of", "creating a replacement of", "created a replacement of"],
    "delete-replaced": ["delete the replaced", "deleting the replaced", "deleted the replaced"],
};

/** A resource's own name, the last part of its URN. */
const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

export class Progress {
    private readonly started = new Map<string, { op: string; at: number }>();
    private readonly heartbeat: NodeJS.Timeout;
    private lastLine = Date.now();
    /** Error diagnostics, e.g. a remote step's "<step> on <host> failed", for the final message. */
    readonly errors: string[] = [];

    constructor(
        private readonly planning: boolean,
        private readonly write: (line: string) => void,
        heartbeatMs = 30_000,
    ) {
        this.heartbeat = setInterval(() => this.stillRunning(heartbeatMs), Math.min(heartbeatMs, 5_000));
        this.heartbeat.unref();
    }

    private line(text: string): void {
        this.lastLine = Date.now();
        this.write(text);
    }

    private stillRunning(heartbeatMs: number): void {
        if (Date.now() - this.lastLine < heartbeatMs || this.started.size === 0) return;
        const now = Date.now();
        const running = [...this.started].map(([urn, s]) => `${nameOf(urn)} (${Math.round((now - s.at) / 1000)} s)`);
        this.line(`  … still working on ${running.join(", ")}`);
    }

    readonly onEvent = (event: EngineEvent): void => {
        const pre = event.resourcePreEvent?.metadata;
        if (pre && pre.type !== "pulumi:pulumi:Stack" && !pre.type.startsWith("pulumi:providers:")) {
            const verb = verbs[pre.op];
            if (!verb) return;
            if (this.planning) this.line(`  ${verb[0]} ${nameOf(pre.urn)}  (${pre.type})`);
            else {
                this.started.set(pre.urn, { op: pre.op, at: Date.now() });
                this.line(`  ${verb[1]} ${nameOf(pre.urn)} …`);
            }
            return;
        }
        const done = event.resOutputsEvent?.metadata;
        if (done && !this.planning) {
            const start = this.started.get(done.urn);
            this.started.delete(done.urn);
            const verb = verbs[done.op];
            if (start && verb) {
                this.line(`  ✓ ${verb[2]} ${nameOf(done.urn)} in ${((Date.now() - start.at) / 1000).toFixed(1)} s`);
            }
            return;
        }
        const failed = event.resOpFailedEvent?.metadata;
        if (failed) {
            this.started.delete(failed.urn);
            this.line(`  ✗ ${nameOf(failed.urn)} failed`);
            return;
        }
        const diagnostic = event.diagnosticEvent;
        // The SDK's type leaves "debug" out, yet the engine sends debug diagnostics (README: "Troubleshooting").
        if (diagnostic && (diagnostic.severity as string) !== "debug" && !diagnostic.ephemeral) {
            const where = diagnostic.urn ? `${nameOf(diagnostic.urn)}: ` : "";
            const text = diagnostic.message.trim();
            if (!text) return;
            if (diagnostic.severity === "error") this.errors.push(`${where}${text}`);
            const label =
                diagnostic.severity === "error" ? "error" : diagnostic.severity === "warning" ? "warning" : "";
            this.line(label ? `  ${label}: ${where}${text}` : `  ${where}${text}`);
            return;
        }
        const policy = event.policyEvent;
        if (policy) {
            this.line(
                `  policy ${policy.policyPackName}/${policy.policyName} (${policy.enforcementLevel}): ` +
                    `${nameOf(policy.resourceUrn ?? "")}: ${policy.message.trim()}`,
            );
        }
    };

    stop(): void {
        clearInterval(this.heartbeat);
    }
}
