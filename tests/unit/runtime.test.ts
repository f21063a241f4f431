// One Node.js line everywhere: the tests run on it, every package's engines field names it, the Node.js that
// scripts/tools.sh installs is on it, and both services' images are built on it, pinned by digest, non-root.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const repo = path.join(__dirname, "..", "..");
const read = (file: string) => fs.readFileSync(path.join(repo, file), "utf8");

type Version = [number, number, number];
const parse = (v: string): Version => {
    const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(v);
    assert.ok(m, `not a release version: ${v}`);
    return [Number(m[1]), Number(m[2]), Number(m[3])];
};
/** Whether a version satisfies a caret range ("^26.10.0": 26.x, at least 26.10.0). */
const satisfies = (version: string, range: string): boolean => {
    assert.match(range, /^\^\d+\.\d+\.\d+$/, `engines should name one line with a caret range, not ${range}`);
    const [v, min] = [parse(version), parse(range.slice(1))];
    return v[0] === min[0] && (v[1] > min[1] || (v[1] === min[1] && v[2] >= min[2]));
};

const engines = (JSON.parse(read("package.json")) as { engines: { node: string } }).engines.node;

describe("the Node.js line", () => {
    it(`runs these tests on it (${process.version}, engines ${engines})`, () => {
        assert.ok(satisfies(process.version, engines), `Node.js ${process.version} is not on ${engines}`);
    });

    it("is the one every workspace's engines field names", () => {
        const workspaces = ["lib", "policy", "packages/testkit", "services/storage-kv-api", "services/storage-s3-api"];
        for (const dir of workspaces) {
            const pkg = JSON.parse(read(`${dir}/package.json`)) as { engines?: { node?: string } };
            assert.equal(pkg.engines?.node, engines, `${dir}/package.json`);
        }
    });

    it("is the one scripts/tools.sh installs when the machine's Node.js is older", () => {
        const pinned = /^node_version=(\S+)$/m.exec(read("scripts/tools.sh"))![1];
        assert.ok(satisfies(pinned, engines), `tools.sh pins Node.js ${pinned}, not on ${engines}`);
    });

    for (const service of ["storage-kv-api", "storage-s3-api"]) {
        it(`builds ${service}'s image on it, pinned by digest, running as a non-root user`, () => {
            const dockerfile = read(`services/${service}/Dockerfile`);
            const base = /^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-[a-z]+-slim@sha256:[0-9a-f]{64}$/m.exec(dockerfile);
            assert.ok(base, "the base image is node:<version>-<debian>-slim@sha256:<digest>");
            assert.ok(satisfies(base[1], engines), `the image's Node.js ${base[1]} is not on ${engines}`);
            // Every stage on the pinned image; build stages may run on the builder's platform, the final one not.
            const froms = [...dockerfile.matchAll(/^FROM (.+)$/gm)].map((m) => m[1]);
            assert.ok(froms.length > 1, "a multi-stage build");
            for (const from of froms.slice(0, -1)) {
                assert.match(from, /^(--platform=\$BUILDPLATFORM )?\$\{NODE_IMAGE\} AS \w+$/, from);
            }
            assert.equal(froms.at(-1), "${NODE_IMAGE}", "the final stage is the pinned image, on the target platform");
            const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
            const user = /^USER (\d+):(\d+)$/m.exec(finalStage);
            assert.ok(user && user[1] !== "0" && user[2] !== "0", "the final stage runs as a numeric non-root user");
        });
    }
});
