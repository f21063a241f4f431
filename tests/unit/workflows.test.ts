// The GitHub workflows cannot run here; `npm run lint` checks them with actionlint (expressions, inputs, the
// shell in `run:`), and this test what actionlint does not: every action pinned by a full commit, and the images
// workflow building every service's Dockerfile for both platforms, pushing only from main and tags.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";

const repo = path.join(__dirname, "..", "..");
const workflows = path.join(repo, ".github", "workflows");

interface Step {
    uses?: string;
    with?: Record<string, string>;
}
interface Workflow {
    on: { push: { branches: string[]; tags: string[] } };
    jobs: Record<string, { strategy?: { matrix?: { service?: string[] } }; steps: Step[] }>;
}

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
});
