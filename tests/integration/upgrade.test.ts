// An upgrade of the program never replaces or deletes a family's running resources: a stack brought up by the
// program as it was before the restructuring (UPGRADE_BASE, a commit of this repository's history) — the
// infra layer on three test hosts, and Vault's bootstrap and configuration on OpenBao raft — then previewed and
// brought up by this checkout's program shows no replace and no delete, and a second preview changes nothing.
// Renamed types (the Vault components) come through their aliases; the dynamic resources trade the serialised
// provider code in their state for a loader of it by name, in one update that runs nothing on a node.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import type { Job, JobResult } from "../upgrade/run-version";
import { type Engine, projectStack, tempEngine } from "../helpers/engine";
import { type RaftServer, startOpenBaoRaft } from "@peoples-cloud/testkit";
import { repoRoot } from "../helpers/stackConfig";
import { startTestHosts, type TestHosts } from "../helpers/testhosts";

/** The last commit before lib/ and the renamed types: what families run today. */
const UPGRADE_BASE = "645e514";
const runner = path.join("tests", "upgrade", "run-version.ts");

/** A checkout of `commit` (its files only) sharing this checkout's node_modules, with today's runner in it. */
function checkoutOf(commit: string, into: string): string {
    try {
        execFileSync("git", ["-C", repoRoot, "cat-file", "-e", `${commit}^{commit}`], { stdio: "ignore" });
    } catch {
        throw new Error(`commit ${commit} is not in this clone's history; the upgrade test needs a full clone`);
    }
    const dir = path.join(into, `base-${commit}`);
    fs.mkdirSync(dir);
    const archive = execFileSync("git", ["-C", repoRoot, "archive", "--format=tar", commit], {
        maxBuffer: 256 * 1024 * 1024,
    });
    execFileSync("tar", ["-x", "-C", dir], { input: archive });
    fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
    fs.mkdirSync(path.dirname(path.join(dir, runner)), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, runner), path.join(dir, runner));
    return dir;
}

function run(checkout: string, engine: Engine, job: Job): JobResult {
    const out = execFileSync(path.join(repoRoot, "node_modules", ".bin", "tsx"), [runner], {
        cwd: checkout,
        input: JSON.stringify(job),
        env: { ...process.env, ...engine.envVars },
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        stdio: ["pipe", "pipe", "inherit"],
    });
    return JSON.parse(out) as JobResult;
}

function stateFile(engine: Engine, stack: string): string {
    return path.join(engine.root, "state", ".pulumi", "stacks", "peoples-cloud", `${stack}.json`);
}

/** Bytes of the checkpoint, of the `__provider` texts in it, and of the longest of them. */
function stateSize(engine: Engine, stack: string): { bytes: number; providerBytes: number; longest: number } {
    const text = fs.readFileSync(stateFile(engine, stack), "utf8");
    let providerBytes = 0;
    let longest = 0;
    const walk = (v: unknown): void => {
        if (Array.isArray(v)) return v.forEach(walk);
        if (v && typeof v === "object") {
            for (const [k, child] of Object.entries(v)) {
                if (k === "__provider" && typeof child === "string") {
                    providerBytes += child.length;
                    longest = Math.max(longest, child.length);
                } else walk(child);
            }
        }
    };
    walk(JSON.parse(text));
    return { bytes: text.length, providerBytes, longest };
}

const replacesOrDeletes = (r: JobResult) => Object.entries(r.operations).filter(([, op]) => /replace|delete/.test(op));

describe("upgrade from the program before the restructuring, with the real engine", function () {
    this.timeout(20 * 60_000);
    let engine: Engine;
    let lab: TestHosts;
    let base: string;
    let servers: RaftServer[] = [];
    const figures: string[] = [];

    before(async () => {
        engine = await tempEngine();
        base = checkoutOf(UPGRADE_BASE, engine.root);
        lab = startTestHosts("pcupg", 3);
    });
    after(async () => {
        console.log(figures.map((f) => `      ${f}`).join("\n"));
        await Promise.all(servers.map((s) => s.stop()));
        engine?.cleanup();
        lab?.stop();
    });

    /** Brings the stack up with the base commit's program, then upgrades it to this checkout's. */
    function upgrade(workDir: string, stackName: string, job: Omit<Job, "workDir" | "stack" | "action">) {
        const jobOf = (action: Job["action"]): Job => ({ ...job, workDir, stack: stackName, action });
        const before = run(base, engine, jobOf("up"));
        const sizeBefore = stateSize(engine, stackName);
        const basePreview = run(base, engine, jobOf("preview"));
        const preview = run(repoRoot, engine, jobOf("preview"));
        assert.deepEqual(replacesOrDeletes(preview), [], "the preview of the upgrade replaces or deletes nothing");
        const up = run(repoRoot, engine, jobOf("up"));
        assert.deepEqual(replacesOrDeletes(up), [], "the upgrade replaces or deletes nothing");
        assert.equal(up.summary.delete ?? 0, 0);
        assert.equal(up.summary.replace ?? 0, 0);
        const sizeAfter = stateSize(engine, stackName);
        const again = run(repoRoot, engine, jobOf("preview"));
        assert.deepEqual(again.operations, {}, "after the upgrade, the next preview changes nothing");
        figures.push(
            `${stackName}: ${Object.keys(before.operations).length} resources; checkpoint ` +
                `${sizeBefore.bytes} B (${sizeBefore.providerBytes} B provider code) -> ${sizeAfter.bytes} B ` +
                `(${sizeAfter.providerBytes} B loaders); preview ${basePreview.seconds} s -> ${again.seconds} s; ` +
                `up ${before.seconds} s (create), upgrade up ${up.seconds} s: ${JSON.stringify(up.summary)}`,
        );
        // A loader names its provider in under 300 characters; serialised code runs to thousands.
        assert.ok(sizeBefore.longest >= 300, "the base's state held no provider code: nothing was upgraded");
        assert.ok(sizeAfter.longest < 300, `the state holds provider code (${sizeAfter.longest} characters)`);
        return { before, up };
    }

    it("infra layer on three test hosts: no replace, no delete, no code left in the state", async () => {
        const config = {
            "peoples-cloud:nodes": {
                provider: "bare-metal",
                hosts: lab.hosts.map((h) => ({ name: h.name, address: h.address })),
            },
            "peoples-cloud:k3s": { enabled: false },
        };
        const stackName = "upgrade-infra";
        const stack = await projectStack(engine, stackName, () => Promise.resolve({}), {
            secrets: { "peoples-cloud:sshPrivateKey": fs.readFileSync(lab.clientKeyPath, "utf8") },
        });
        const file = path.join(stack.workspace.workDir, `Pulumi.${stackName}.yaml`);
        const stackFile = yaml.load(fs.readFileSync(file, "utf8")) as { config: Record<string, unknown> };
        fs.writeFileSync(file, yaml.dump({ ...stackFile, config: { ...stackFile.config, ...config } }));
        const { up } = upgrade(stack.workspace.workDir, stackName, { program: "platform" });
        assert.ok((up.summary.update ?? 0) > 0, "the remote steps' state moved to the loader");
    });

    it("Vault's bootstrap and configuration on OpenBao raft: renamed types keep their resources", async () => {
        servers = await Promise.all(["vault-0", "vault-1"].map((id) => startOpenBaoRaft(id)));
        const stack = await projectStack(engine, "upgrade-vault", () => Promise.resolve({}));
        const { before, up } = upgrade(stack.workspace.workDir, "upgrade-vault", {
            program: "vault",
            servers: servers.map(({ nodeId, url, dir }) => ({ nodeId, url, dir })),
            auditFile: path.join(servers[0].dir, "audit.log"),
        });
        const renamed = Object.keys(up.operations).filter((urn) => /VaultBootstrap|VaultConfiguration/.test(urn));
        assert.ok(renamed.length > 0, "the components now carry their class names");
        assert.ok(Object.keys(before.operations).some((urn) => /vault:Bootstrap\$/.test(urn)));
    });
});
