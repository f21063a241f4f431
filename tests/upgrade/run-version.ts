// Runs one engine operation with the program of whichever checkout this file sits in: the upgrade test copies
// it into a checkout of an earlier commit and runs it there with tsx, then runs it here. It imports only what
// both versions export under the same names (`platform()` and the Vault test program), so the same file drives
// either. The job comes as JSON on stdin; the result (the engine's change summary and the operations it
// planned per resource) goes to stdout as JSON. The engine's environment comes from this process's own.
import * as fs from "node:fs";
import { LocalWorkspace, type EngineEvent, type PulumiFn } from "@pulumi/pulumi/automation";
import { platform } from "../../program";
import { vaultProgram } from "../helpers/vault";

export interface Job {
    workDir: string;
    stack: string;
    program: "platform" | "vault";
    action: "preview" | "up";
    /** For the Vault program: the OpenBao raft servers and the audit file. */
    servers?: { nodeId: string; url: string; dir: string }[];
    auditFile?: string;
}

export interface JobResult {
    summary: Record<string, number>;
    /** URN -> operation, for every resource the engine did anything but keep as it was. */
    operations: Record<string, string>;
    seconds: number;
}

async function main(): Promise<void> {
    const job = JSON.parse(fs.readFileSync(0, "utf8")) as Job;
    const program: PulumiFn =
        job.program === "platform"
            ? () => Promise.resolve(platform())
            : // Both versions' vaultProgram read only these fields of a server.
              vaultProgram(job.servers as Parameters<typeof vaultProgram>[0], { auditFile: job.auditFile });
    const stack = await LocalWorkspace.selectStack(
        { stackName: job.stack, projectName: "peoples-cloud", program },
        { workDir: job.workDir, envVars: {} },
    );
    const operations: Record<string, string> = {};
    const onEvent = (event: EngineEvent) => {
        const meta = event.resourcePreEvent?.metadata;
        if (meta && meta.op !== "same") operations[meta.urn] = meta.op;
    };
    const started = Date.now();
    const summary =
        job.action === "up"
            ? (await stack.up({ onEvent })).summary.resourceChanges
            : (await stack.preview({ onEvent })).changeSummary;
    const result: JobResult = { summary: { ...summary }, operations, seconds: (Date.now() - started) / 1000 };
    process.stdout.write(JSON.stringify(result));
}

main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message.split("\n").slice(-20).join("\n") : err);
    process.exit(1);
});
