// The K3s manifest scripts of lib/, run by bash here: the manifest writer is idempotent and its delete empties
// the file (K3s prunes an emptied file's objects); the wait step waits for a CRD to appear before waiting for
// its condition, and names what it gave up on. K3s cannot run here, so `k3s` is a script that plays the
// API server's part from a state folder; what is tested is the scripts' own logic.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const scripts = path.join(__dirname, "..", "..", "lib", "scripts");

function run(script: string, env: Record<string, string>, stdin = "") {
    const result = spawnSync("bash", [path.join(scripts, script)], {
        input: stdin,
        encoding: "utf8",
        env: { ...process.env, ...env },
        timeout: 60_000,
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

let dir: string;
beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-crds-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("k3s-manifest.sh", () => {
    it("writes the manifest once, leaves it alone when unchanged, and empties it on delete", () => {
        const manifests = path.join(dir, "server", "manifests");
        const env = { K3S_DATA_DIR: dir, K3S_MANIFEST: "peoples-cloud-test" };
        const file = path.join(manifests, "peoples-cloud-test.yaml");

        const notServer = run("k3s-manifest.sh", env, "kind: A\n");
        assert.equal(notServer.code, 1);
        assert.match(notServer.stderr, /manifests missing: is K3s installed as a server here\?/);

        fs.mkdirSync(manifests, { recursive: true });
        assert.match(run("k3s-manifest.sh", env, "kind: A\n").stdout, /peoples-cloud-test written/);
        const written = fs.statSync(file);
        assert.equal(written.mode & 0o777, 0o600);
        assert.match(run("k3s-manifest.sh", env, "kind: A\n").stdout, /unchanged/);
        assert.equal(fs.statSync(file).mtimeMs, written.mtimeMs);
        assert.match(run("k3s-manifest.sh", env, "kind: B\n").stdout, /written/);
        assert.equal(fs.readFileSync(file, "utf8"), "kind: B\n");
        assert.deepEqual(fs.readdirSync(manifests), ["peoples-cloud-test.yaml"], "no temporary file left behind");

        assert.match(run("k3s-manifest-delete.sh", env).stdout, /emptied/);
        assert.equal(fs.readFileSync(file, "utf8"), "");
        assert.equal(run("k3s-manifest-delete.sh", env).code, 0, "deleting twice is harmless");
    });

    it("leaves no new file behind when the write fails", () => {
        const manifests = path.join(dir, "server", "manifests");
        fs.mkdirSync(manifests, { recursive: true });
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(bin, "mv"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
        const env = { K3S_DATA_DIR: dir, K3S_MANIFEST: "peoples-cloud-test", PATH: `${bin}:${process.env.PATH}` };
        assert.equal(run("k3s-manifest.sh", env, "kind: A\n").code, 1);
        assert.deepEqual(fs.readdirSync(manifests), []);
    });

    it("refuses a name that could leave the folder", () => {
        const result = run("k3s-manifest.sh", { K3S_DATA_DIR: dir, K3S_MANIFEST: "../etc/passwd" });
        assert.equal(result.code, 1);
        assert.match(result.stderr, /not a manifest name/);
    });
});

describe("k3s-wait.sh", () => {
    /** A `k3s kubectl` whose objects appear after `appearAfter` lookups and meet their condition if `met`. */
    function fakeK3s(objects: Record<string, { appearAfter: number; met: boolean }>) {
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(dir, "objects.json"), JSON.stringify(objects));
        fs.writeFileSync(
            path.join(bin, "k3s"),
            `#!/usr/bin/env bash
set -euo pipefail
[ "$1" = kubectl ] || exit 64
verb=$2 kind=$3
shift 3
[ "$1" = -n ] && shift 2
name=$1
count_file="${dir}/seen-$kind-$name"
count=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
echo "$count" >"$count_file"
echo "$verb $kind $name" >>"${dir}/calls"
node -e '
const o = require(process.argv[1])[process.argv[2]];
const [verb, count] = [process.argv[3], Number(process.argv[4])];
if (!o) process.exit(1);
if (verb === "get") process.exit(count > o.appearAfter ? 0 : 1);
process.exit(o.met ? 0 : 1);
' "${dir}/objects.json" "$kind/$name" "$verb" "$count"
`,
            { mode: 0o755 },
        );
        return { PATH: `${bin}:${process.env.PATH ?? ""}` };
    }

    it("waits for a CRD to appear, then for it to be established, then for a deployment", function () {
        this.timeout(30_000);
        const env = fakeK3s({
            "crd/clusterissuers.cert-manager.io": { appearAfter: 1, met: true },
            "deployment/cert-manager-webhook": { appearAfter: 0, met: true },
        });
        const result = run("k3s-wait.sh", {
            ...env,
            K3S_WAIT_CRDS: "clusterissuers.cert-manager.io",
            K3S_WAIT_DEPLOYMENTS: "cert-manager/cert-manager-webhook",
        });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /k3s-wait: ready/);
        assert.deepEqual(fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n"), [
            "get crd clusterissuers.cert-manager.io",
            "get crd clusterissuers.cert-manager.io",
            "wait crd clusterissuers.cert-manager.io",
            "get deployment cert-manager-webhook",
            "wait deployment cert-manager-webhook",
        ]);
    });

    it("names the object that never appeared, and the one whose condition never came", function () {
        this.timeout(30_000);
        const env = fakeK3s({
            "crd/servicemonitors.monitoring.coreos.com": { appearAfter: 1000, met: true },
            "certificate/peoples-cloud-internal-ca": { appearAfter: 0, met: false },
        });
        const never = run("k3s-wait.sh", {
            ...env,
            K3S_WAIT_SECONDS: "2",
            K3S_WAIT_CRDS: "servicemonitors.monitoring.coreos.com",
        });
        assert.equal(never.code, 1);
        assert.match(never.stderr, /crd servicemonitors\.monitoring\.coreos\.com never appeared/);
        const notReady = run("k3s-wait.sh", {
            ...env,
            K3S_WAIT_CERTIFICATES: "cert-manager/peoples-cloud-internal-ca",
        });
        assert.equal(notReady.code, 1);
        assert.match(notReady.stderr, /certificate cert-manager\/peoples-cloud-internal-ca not Ready in time/);
    });

    it("waits for a secret an operator writes to appear", function () {
        this.timeout(30_000);
        const env = fakeK3s({ "secret/storage-s3-api-keys": { appearAfter: 1, met: true } });
        const result = run("k3s-wait.sh", { ...env, K3S_WAIT_SECRETS: "storage/storage-s3-api-keys" });
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n"), [
            "get secret storage-s3-api-keys",
            "get secret storage-s3-api-keys",
            "wait secret storage-s3-api-keys",
        ]);
        const never = run("k3s-wait.sh", { ...env, K3S_WAIT_SECONDS: "2", K3S_WAIT_SECRETS: "storage/missing" });
        assert.equal(never.code, 1);
        assert.match(never.stderr, /secret storage\/missing never appeared/);
    });
});
