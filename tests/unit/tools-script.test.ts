// scripts/tools.sh's choice of a tool: a Node.js, Pulumi CLI or OpenBao already on PATH is used when it is at
// least the pinned version (Node.js: on the pinned line), and otherwise the pinned one is fetched or built.
// The tools on PATH are stand-ins that print a version; the cache is a temporary folder, and PATH holds no Go,
// so a tool that is not accepted ends in "Go is not installed" instead of a build.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const repo = path.join(__dirname, "..", "..");
const toolsScript = path.join(repo, "scripts", "tools.sh");
const pinnedNode = /^node_version=(\S+)$/m.exec(fs.readFileSync(toolsScript, "utf8"))![1];
const cpu = process.arch === "arm64" ? "arm64" : "x64";

let work: string;
let cache: string;
let bin: string;

function standIn(name: string, output: string): string {
    const file = path.join(bin, name);
    fs.writeFileSync(file, `#!/bin/sh\necho '${output}'\n`, { mode: 0o755 });
    return file;
}

function tools(...args: string[]) {
    const run = spawnSync("bash", [toolsScript, ...args], {
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin`, HOME: work, PEOPLES_CLOUD_TOOLS_CACHE: cache },
    });
    return { status: run.status, stdout: run.stdout.trim(), stderr: run.stderr };
}

const linkIn = (binDir: string, name: string) => fs.realpathSync(path.join(binDir, name));

describe("scripts/tools.sh", () => {
    let cachedNode: string;

    beforeEach(() => {
        work = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-tools-"));
        cache = path.join(work, "cache");
        bin = path.join(work, "bin");
        fs.mkdirSync(bin);
        // The pinned Node.js, as if installed: a stand-in in the cache's place for it.
        cachedNode = path.join(cache, "node", `${pinnedNode}-${cpu}`, "bin", "node");
        fs.mkdirSync(path.dirname(cachedNode), { recursive: true });
        fs.writeFileSync(cachedNode, `#!/bin/sh\necho v${pinnedNode}\n`, { mode: 0o755 });
    });
    afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

    for (const [machine, used] of [
        ["v20.20.2", "cache"],
        [`v${pinnedNode.split(".")[0]}.99.0`, "PATH"],
        [`v${pinnedNode.split(".")[0]}.0.0`, "cache"],
        [`v${Number(pinnedNode.split(".")[0]) + 1}.0.0`, "cache"],
    ] as const) {
        it(`puts the ${used}'s Node.js on PATH when the machine's is ${machine} (pinned v${pinnedNode})`, () => {
            const onPath = standIn("node", machine);
            const run = tools("--bin-dir", "node");
            assert.equal(run.status, 0, run.stderr);
            assert.equal(linkIn(run.stdout, "node"), used === "PATH" ? onPath : cachedNode);
        });
    }

    it("uses a Pulumi CLI on PATH newer than the pinned one instead of building it", () => {
        standIn("node", `v${pinnedNode}`);
        const pulumi = standIn("pulumi", "v3.999.0");
        const run = tools("engine");
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stderr, /pulumi: using .* from PATH \(v3\.999\.0; pinned v3\.\d+\.\d+\)/);
        assert.equal(linkIn(tools("--bin-dir", "engine").stdout, "pulumi"), pulumi);
    });

    for (const version of ["v3.100.0", "v3.999.0-alpha.1+dirty", "not a version"]) {
        it(`builds the pinned Pulumi CLI when the one on PATH reports ${version}`, () => {
            standIn("node", `v${pinnedNode}`);
            standIn("pulumi", version);
            const run = tools("engine");
            assert.notEqual(run.status, 0);
            assert.match(run.stderr, /pulumi: Go is not installed \(needed to build it from its module\)/);
            assert.match(
                tools("--bin-dir", "engine").stderr,
                /pulumi is not built yet; run: scripts\/tools\.sh engine/,
            );
        });
    }

    it("uses an OpenBao on PATH newer than the pinned one, but always the pinned MinIO", () => {
        standIn("node", `v${pinnedNode}`);
        standIn("bao", "OpenBao v2.9.0 ('0000000000000000000000000000000000000000'), built 2026-12-01T00:00:00Z");
        standIn("minio", "minio version RELEASE.2099-01-01T00-00-00Z");
        const run = tools("servers");
        assert.match(run.stderr, /bao: using .* from PATH \(OpenBao v2\.9\.0 .*; pinned v2\.\d+\.\d+\)/);
        assert.match(run.stderr, /minio: Go is not installed/);
        assert.notEqual(run.status, 0);
    });

    it("refuses a Node.js package whose integrity is not the pinned one, and leaves nothing in the cache", () => {
        fs.rmSync(path.join(cache, "node"), { recursive: true });
        standIn("node", "v20.20.2");
        // An npm whose `pack` hands over a tarball with another binary in it.
        fs.writeFileSync(
            path.join(bin, "npm"),
            `#!/bin/sh
mkdir -p package/bin && printf '#!/bin/sh\\necho v${pinnedNode}\\n' >package/bin/node && chmod +x package/bin/node
tar -czf node-linux-${cpu}-${pinnedNode}.tgz package && rm -r package && echo node-linux-${cpu}-${pinnedNode}.tgz
`,
            { mode: 0o755 },
        );
        const run = tools("node");
        assert.notEqual(run.status, 0);
        assert.match(run.stderr, new RegExp(`node-linux-${cpu}@${pinnedNode} does not match its pinned integrity`));
        assert.deepEqual(fs.readdirSync(path.join(cache, "node")), []);
    });

    it("refuses an unknown tier without doing anything", () => {
        const run = tools("engnie");
        assert.notEqual(run.status, 0);
        assert.match(run.stderr, /unknown argument 'engnie' \(tiers: node engine servers clients host all/);
        assert.equal(fs.existsSync(path.join(cache, "bin")), false);
    });
});
