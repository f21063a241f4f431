// The GitHub workflows cannot run here; `npm run lint` checks them with actionlint (expressions, inputs, the
// shell in `run:`), and this test what actionlint does not: every action pinned by a full commit, and the images
// workflow building every service's Dockerfile for both platforms, pushing only from main and tags.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { SERVICES as PINNED } from "../../scripts/pin-images";

const repo = path.join(__dirname, "..", "..");
const workflows = path.join(repo, ".github", "workflows");

interface Step {
    id?: string;
    uses?: string;
    run?: string;
    with?: Record<string, string | boolean>;
    env?: Record<string, string>;
}
interface Job {
    if?: string;
    environment?: string;
    concurrency?: { group: string; "cancel-in-progress": boolean };
    permissions?: Record<string, string>;
    strategy?: { matrix?: { service?: string[]; stack?: string } };
    steps: Step[];
}
interface Workflow {
    on: { push: { branches: string[]; tags: string[] }; pull_request?: unknown };
    jobs: Record<string, Job>;
}

const load = (file: string) => yaml.load(fs.readFileSync(path.join(workflows, file), "utf8")) as Workflow;

describe("GitHub workflows", () => {
    const files = fs.readdirSync(workflows).filter((f) => /\.ya?ml$/.test(f));

    for (const file of files) {
        it(`${file}: every action is pinned by a full commit, its release named beside it`, () => {
            const text = fs.readFileSync(path.join(workflows, file), "utf8");
            const uses = [...text.matchAll(/^\s*(?:- )?uses: (\S+)(.*)$/gm)];
            assert.ok(uses.length > 0);
            for (const [, action, comment] of uses) {
                assert.match(action, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${action} is not pinned by commit`);
                assert.match(comment, /^ # v\d+\.\d+\.\d+$/, `${action} names no release`);
            }
        });
    }

    it("images.yml builds every service's Dockerfile for amd64 and arm64, pushing from main and tags", () => {
        const workflow = yaml.load(fs.readFileSync(path.join(workflows, "images.yml"), "utf8")) as Workflow;
        const services = fs
            .readdirSync(path.join(repo, "services"))
            .filter((s) => fs.existsSync(path.join(repo, "services", s, "Dockerfile")));
        const job = workflow.jobs.image;
        assert.deepEqual([...(job.strategy?.matrix?.service ?? [])].sort(), services.sort());
        const build = job.steps.find((s) => s.uses?.startsWith("docker/build-push-action@"));
        assert.equal(build?.with?.context, ".", "the build context is the repository root");
        assert.equal(build?.with?.file, "services/${{ matrix.service }}/Dockerfile");
        assert.equal(build?.with?.platforms, "linux/amd64,linux/arm64");
        assert.equal(build?.with?.push, "${{ github.event_name == 'push' }}");
        assert.deepEqual(workflow.on.push, { branches: ["main"], tags: ["v*"] });
    });

    it("images.yml's pin job pins every image the program takes from a release, each by its digest", () => {
        const pin = load("images.yml").jobs.pin;
        const script = pin.steps.map((s) => s.run ?? "").join("\n");
        const command = /npx --no-install tsx scripts\/pin-images\.ts (.*)/.exec(script)?.[1] ?? "";
        const named = [...command.matchAll(/"(\w+)=\$(\w+)"/g)].map((m) => [m[1], m[2]]);
        assert.deepEqual(named.map(([service]) => service).sort(), [...PINNED].sort(), command);
        for (const [service, variable] of named) {
            assert.match(
                script,
                new RegExp(`${variable}="ghcr\\.io/\\$\\{OWNER,,\\}/[a-z0-9-]+@\\$\\(digest `),
                service,
            );
        }
    });

    for (const [file, command] of [
        ["preview.yml", "preview"],
        ["up.yml", "up"],
    ] as const) {
        it(`${file}: ${command} with the policy pack on each touched family stack, secrets only from the repository's`, () => {
            const workflow = load(file);
            const changed = workflow.jobs.stacks.steps.find((s) => s.run?.includes("bash scripts/changed-stacks.sh"));
            assert.ok(changed, "the touched stacks do not come from scripts/changed-stacks.sh");
            const job = workflow.jobs[command];
            assert.equal(job.strategy?.matrix?.stack, "${{ fromJSON(needs.stacks.outputs.stacks) }}");
            assert.ok(
                job.steps.some((s) => s.run?.includes("source scripts/setup.sh engine")),
                "not CI's set-up",
            );
            const action = job.steps.find((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command);
            assert.equal(action?.with?.command, command);
            assert.equal(action?.with?.policyPacks, "policy");
            assert.equal(action?.with?.["stack-name"], "${{ matrix.stack }}");
            for (const [name, value] of Object.entries({ ...action?.env, "cloud-url": action?.with?.["cloud-url"] })) {
                assert.match(String(value), /^\$\{\{ secrets\.[A-Z_]+ \}\}$/, `${name} is not a repository secret`);
            }
            assert.ok(action?.env?.PULUMI_CONFIG_PASSPHRASE);
            assert.ok(!fs.readFileSync(path.join(workflows, file), "utf8").includes("--debug"));
        });
    }

    it("preview.yml comments on the pull request, and runs no preview for a fork, saying so", () => {
        const workflow = load("preview.yml");
        assert.ok(workflow.on.pull_request !== undefined);
        const action = workflow.jobs.preview.steps.find((s) => s.with?.command === "preview");
        assert.equal(action?.with?.["comment-on-pr"], true);
        assert.equal(workflow.jobs.preview.permissions?.["pull-requests"], "write");
        assert.match(workflow.jobs.preview.if ?? "", /needs\.stacks\.outputs\.secrets == 'true'/);
        const changed = workflow.jobs.stacks.steps.find((s) => s.id === "changed" || s.run?.includes("FORK"));
        assert.equal(changed?.env?.FORK, "${{ github.event.pull_request.head.repo.full_name != github.repository }}");
        assert.match(changed?.run ?? "", /comes from a fork, which gets no secrets/);
    });

    it("up.yml runs on merges to main behind an approved environment, one up per stack at a time", () => {
        const workflow = load("up.yml");
        assert.deepEqual(workflow.on.push, { branches: ["main"] });
        const job = workflow.jobs.up;
        assert.equal(job.environment, "family");
        assert.deepEqual(job.concurrency, { group: "up-${{ matrix.stack }}", "cancel-in-progress": false });
    });
});

describe("scripts/changed-stacks.sh", () => {
    let dir: string;
    const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, encoding: "utf8" }).trim();
    const commit = (files: Record<string, string>) => {
        for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
        git("add", "-A");
        git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "change");
        return git("rev-parse", "HEAD");
    };
    const stacks = (base: string, head: string) =>
        JSON.parse(
            execFileSync("bash", [path.join(repo, "scripts", "changed-stacks.sh"), base, head], {
                cwd: dir,
                encoding: "utf8",
            }),
        ) as string[];
    const family = (nodes: string) => `encryptionsalt: v1:abc\nconfig:\n  peoples-cloud:nodes: ${nodes}\n`;

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-changed-"));
        git("init", "-q");
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("lists every family stack for a program change, a stack's own change alone, none for docs or examples", () => {
        const first = commit({
            "Pulumi.yaml": "name: peoples-cloud\n",
            "Pulumi.dev.yaml": "config: {}\n",
            "Pulumi.smith.yaml": family("a"),
            "Pulumi.jones.yaml": family("a"),
            "program.ts": "1",
            "README.md": "1",
        });
        assert.deepEqual(stacks("0000000000000000000000000000000000000000", first), ["jones", "smith"]);
        const smith = commit({ "Pulumi.smith.yaml": family("b") });
        assert.deepEqual(stacks(first, smith), ["smith"]);
        const docs = commit({ "README.md": "2", "Pulumi.dev.yaml": "config: {a: 1}\n" });
        assert.deepEqual(stacks(smith, docs), []);
        const program = commit({ "program.ts": "2" });
        assert.deepEqual(stacks(docs, program), ["jones", "smith"]);
        fs.rmSync(path.join(dir, "Pulumi.jones.yaml"));
        const gone = commit({ "program.ts": "3" });
        assert.deepEqual(stacks(program, gone), ["smith"], "a removed family's stack is not previewed");
    });
});
