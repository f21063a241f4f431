// The infra layer's scripts that write a secret or a temporary file on a node — wg-keygen.sh, wg-apply.sh,
// k3s-token.sh, k3s-install.sh — run by bash as a remote step runs them, with each step made to fail, or to
// hang until the script's process group gets SIGTERM: afterwards no temporary file is left, and the secret is
// in no file but its own. The commands they run (wg, wg-quick, ip, k3s, curl, the K3s installer) are
// stand-ins on PATH; WG_DIR, K3S_CONFIG_DIR and TMPDIR point the scripts at a temporary folder.
import * as assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const scripts = path.join(__dirname, "..", "..", "components", "infra", "scripts");
const WG_KEY = "c3RhbmQtaW4gcHJpdmF0ZSBrZXkgb2YgdGhpcyB0ZXM=";
const TOKEN = "7f".repeat(32);
const WG_CONFIG = "[Interface]\nAddress = 10.99.0.1/24\nListenPort = 51820\n";

const real = (command: string) => execFileSync("bash", ["-c", `command -v ${command}`], { encoding: "utf8" }).trim();

/**
 * Stand-ins on PATH. `fail_if CALL` fails when STANDIN_FAIL names the call ("curl", "wg syncconf");
 * `hang_if CALL` marks the folder and sleeps when STANDIN_HANG names it, so the test can signal the script
 * mid-step. A stand-in that writes (awk, wg genkey, curl) does so before it fails or hangs.
 */
function standIns(bin: string, standInDir: string): void {
    const common = `fail_if() { if [ "\${STANDIN_FAIL:-}" = "$1" ]; then echo "$1: failed (stand-in)" >&2; exit 1; fi; }
hang_if() { if [ "\${STANDIN_HANG:-}" = "$1" ]; then : >"${standInDir}/hanging"; sleep 30; exit 1; fi; }
`;
    const bodies: Record<string, string> = {
        awk: `${real("awk")} "$@" || exit; fail_if awk; hang_if awk`,
        mv: `fail_if mv; hang_if mv; exec ${real("mv")} "$@"`,
        ip: `case "$1 $2" in
    "link add") exit 1 ;;
    "link show") [ -n "\${STANDIN_WG0_UP:-}" ] ;;
    *) exit 0 ;;
esac`,
        wg: `case $1 in
    genkey) echo ${WG_KEY}; fail_if "wg genkey"; hang_if "wg genkey" ;;
    pubkey) cat >/dev/null; echo c3RhbmQtaW4gcHVibGljIGtleQ== ;;
    syncconf) grep -q '^PrivateKey = ${WG_KEY}$' "$3" || exit 3; fail_if "wg syncconf"; hang_if "wg syncconf" ;;
esac`,
        "wg-quick": `case $1 in
    strip) cat "$WG_DIR/$2.conf"; fail_if "wg-quick strip" ;;
    up) fail_if "wg-quick up"; hang_if "wg-quick up" ;;
esac`,
        systemctl: `[ "$1" != cat ]`,
        k3s: `case $1 in
    --version) echo "k3s version v0.0.0+stand-in (00000000)" ;;
    *) exit 0 ;;
esac`,
        curl: `while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
printf '#!/bin/sh\\n# the K3s installer, half downloaded\\n' >"$out"
fail_if curl; hang_if curl
echo 'exit 0' >>"$out"`,
        sh: `fail_if installer; hang_if installer`,
    };
    fs.mkdirSync(bin);
    for (const [name, body] of Object.entries(bodies)) {
        fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n${common}${body}\n`, { mode: 0o755 });
    }
}

let dir: string;
let env: Record<string, string>;
const wgDir = () => path.join(dir, "etc-wireguard");
const k3sDir = () => path.join(dir, "etc-rancher-k3s");
const tmpDir = () => path.join(dir, "tmp");

beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-infra-scripts-"));
    for (const d of [wgDir(), k3sDir(), tmpDir()]) fs.mkdirSync(d, { mode: 0o700 });
    const bin = path.join(dir, "bin");
    standIns(bin, dir);
    env = {
        PATH: `${bin}:${process.env.PATH ?? ""}`,
        WG_DIR: wgDir(),
        K3S_CONFIG_DIR: k3sDir(),
        TMPDIR: tmpDir(),
        K3S_VERSION: "v1.33.1+k3s1",
        K3S_ROLE: "server",
    };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** bash running the script's text, as a remote step runs it (lib/remote-script.ts). */
const bashArgs = (script: string) => ["-c", fs.readFileSync(path.join(scripts, script), "utf8"), script];

function run(script: string, extra: Record<string, string>, stdin = "") {
    const result = spawnSync("bash", bashArgs(script), {
        input: stdin,
        encoding: "utf8",
        env: { ...process.env, ...env, ...extra },
        timeout: 30_000,
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the script until a stand-in hangs, then signals its process group as a stopped session would. */
async function runSignalled(script: string, extra: Record<string, string>, stdin: string) {
    const child = spawn("bash", bashArgs(script), {
        env: { ...process.env, ...env, ...extra },
        detached: true,
        stdio: ["pipe", "ignore", "ignore"],
    });
    child.stdin.end(stdin);
    const exited = new Promise<number | string | null>((resolve) =>
        child.on("exit", (code, signal) => resolve(code ?? signal)),
    );
    const marker = path.join(dir, "hanging");
    for (let waited = 0; !fs.existsSync(marker); waited += 50) {
        if (waited > 20_000) {
            process.kill(-child.pid!, "SIGKILL");
            throw new Error(`${script} never reached the hanging step`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
    process.kill(-child.pid!, "SIGTERM");
    return exited;
}

/** Every file in the scripts' folders (the stand-ins' own excepted), relative to the test folder. */
function files(): string[] {
    return [wgDir(), k3sDir(), tmpDir()]
        .flatMap((d) => fs.readdirSync(d, { recursive: true, withFileTypes: true }))
        .filter((e) => !e.isDirectory())
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
        .sort();
}

/** The files holding `secret`, relative to the test folder. */
function holding(secret: string): string[] {
    return files().filter((f) => fs.readFileSync(path.join(dir, f), "utf8").includes(secret));
}

interface Step {
    /** The stand-in call that fails (STANDIN_FAIL) or hangs (STANDIN_HANG). */
    call: string;
    /** Environment of the run besides the stand-ins'. */
    extra?: Record<string, string>;
    /** The files there after the script stopped at this step. */
    left: string[];
}

function checkSteps(
    script: string,
    setup: () => void,
    stdin: string,
    secret: { text: string; home: string[] },
    failing: Step[],
    hanging: Step[],
) {
    const check = (left: string[], what: string) => {
        assert.deepEqual(files(), left, `${what}: a file was left behind`);
        assert.deepEqual(
            holding(secret.text),
            secret.home.filter((f) => left.includes(f)).sort(),
            `${what}: secret on disk`,
        );
    };
    for (const step of failing) {
        it(`leaves no file behind when ${step.call} fails`, () => {
            setup();
            const result = run(script, { ...step.extra, STANDIN_FAIL: step.call }, stdin);
            assert.notEqual(result.code, 0, "the failure was not reported");
            check(step.left, step.call);
        });
    }
    for (const step of hanging) {
        it(`leaves no file behind when signalled during ${step.call}`, async function () {
            this.timeout(30_000);
            setup();
            const status = await runSignalled(script, { ...step.extra, STANDIN_HANG: step.call }, stdin);
            assert.notEqual(status, 0, "the signal was not reported");
            check(step.left, `${step.call}, signalled`);
        });
    }
}

describe("wg-keygen.sh", () => {
    const key = "etc-wireguard/wg0.key";
    it("writes the key (0600) and prints only the public key, nothing else left", () => {
        const result = run("wg-keygen.sh", {});
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), "c3RhbmQtaW4gcHVibGljIGtleQ==");
        assert.equal(fs.statSync(path.join(dir, key)).mode & 0o777, 0o600);
        assert.deepEqual(files(), [key]);
    });
    checkSteps(
        "wg-keygen.sh",
        () => {},
        "",
        { text: WG_KEY, home: [key] },
        [
            { call: "wg genkey", left: [] },
            { call: "mv", left: [] },
        ],
        [
            { call: "wg genkey", left: [] },
            { call: "mv", left: [] },
        ],
    );
});

describe("wg-apply.sh", () => {
    const [key, conf] = ["etc-wireguard/wg0.key", "etc-wireguard/wg0.conf"];
    const setup = () => fs.writeFileSync(path.join(dir, key), `${WG_KEY}\n`, { mode: 0o600 });
    const secret = { text: WG_KEY, home: [key, conf] };

    it("writes wg0.conf (0600) with the node's key, brings wg0 up or syncs it, and leaves nothing else", () => {
        setup();
        const runs: [Record<string, string>, RegExp][] = [
            [{}, /wg0 up/],
            [{ STANDIN_WG0_UP: "1" }, /wg0 peers synced/],
        ];
        for (const [extra, said] of runs) {
            const result = run("wg-apply.sh", extra, WG_CONFIG);
            assert.equal(result.code, 0, result.stderr);
            assert.match(result.stdout, said);
            assert.equal(fs.statSync(path.join(dir, conf)).mode & 0o777, 0o600);
            assert.match(fs.readFileSync(path.join(dir, conf), "utf8"), new RegExp(`^PrivateKey = ${WG_KEY}$`, "m"));
            assert.deepEqual(files(), [conf, key]);
            assert.deepEqual(holding(WG_KEY), [conf, key]);
        }
    });

    it("refuses a config that carries a private key or has no interface, leaving no file behind", () => {
        setup();
        for (const bad of [`${WG_CONFIG}PrivateKey = another\n`, "[Peer]\nPublicKey = x\n"]) {
            assert.equal(run("wg-apply.sh", {}, bad).code, 2);
            assert.deepEqual(files(), [key]);
        }
    });

    const up = { STANDIN_WG0_UP: "1" };
    checkSteps(
        "wg-apply.sh",
        setup,
        WG_CONFIG,
        secret,
        [
            { call: "awk", left: [key] },
            { call: "mv", left: [key] },
            { call: "wg-quick strip", extra: up, left: [conf, key] },
            { call: "wg syncconf", extra: up, left: [conf, key] },
            { call: "wg-quick up", left: [conf, key] },
        ],
        [
            { call: "awk", left: [key] },
            { call: "mv", left: [key] },
            { call: "wg syncconf", extra: up, left: [conf, key] },
        ],
    );
});

describe("k3s-token.sh", () => {
    const token = "etc-rancher-k3s/cluster-token";
    it("writes the token (0600) once and leaves nothing else", () => {
        for (const expected of [/written/, /unchanged/]) {
            const result = run("k3s-token.sh", {}, TOKEN);
            assert.equal(result.code, 0, result.stderr);
            assert.match(result.stdout, expected);
        }
        assert.equal(fs.statSync(path.join(dir, token)).mode & 0o777, 0o600);
        assert.deepEqual(files(), [token]);
    });
    checkSteps(
        "k3s-token.sh",
        () => {},
        TOKEN,
        { text: TOKEN, home: [token] },
        [{ call: "mv", left: [] }],
        [{ call: "mv", left: [] }],
    );
});

describe("k3s-install.sh", () => {
    const [token, config] = ["etc-rancher-k3s/cluster-token", "etc-rancher-k3s/config.yaml"];
    const setup = () => fs.writeFileSync(path.join(dir, token), `${TOKEN}\n`, { mode: 0o600 });
    const stdin = "token-file: /etc/rancher/k3s/cluster-token\n";

    it("installs with the downloaded installer, waits until ready, and leaves only its config", () => {
        setup();
        const result = run("k3s-install.sh", {}, stdin);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(fs.readFileSync(path.join(dir, config), "utf8"), stdin);
        assert.deepEqual(files(), [token, config].sort());
    });

    const secret = { text: TOKEN, home: [token] };
    checkSteps(
        "k3s-install.sh",
        setup,
        stdin,
        secret,
        [
            { call: "mv", left: [token] },
            { call: "curl", left: [token, config].sort() },
            { call: "installer", left: [token, config].sort() },
        ],
        [
            { call: "mv", left: [token] },
            { call: "curl", left: [token, config].sort() },
            { call: "installer", left: [token, config].sort() },
        ],
    );
});

describe("k3s-forget.sh", () => {
    /** Runs the script with a k3s stand-in that records its calls; returns them and what the script printed. */
    function forget(installation: string) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-forget-"));
        const calls = path.join(dir, "calls");
        fs.writeFileSync(path.join(dir, "k3s"), `#!/usr/bin/env bash\necho "k3s $*" >>"${calls}"\n`, { mode: 0o755 });
        try {
            const out = execFileSync("bash", [path.join(scripts, "k3s-forget.sh")], {
                env: { PATH: `${dir}:/usr/bin:/bin`, K3S_NODE: "node-2", NODE_INSTALLATION: installation },
                encoding: "utf8",
            });
            return { out, calls: fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : [] };
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }

    it("leaves a node on its first installation alone", () => {
        const { out, calls } = forget("1");
        assert.deepEqual(calls, []);
        assert.match(out, /node-2 is on its first installation/);
    });

    it("on a reinstalled machine deletes the node and its node password, whether the cluster has them or not", () => {
        const { out, calls } = forget("2");
        assert.deepEqual(calls, [
            "k3s kubectl delete node/node-2 --ignore-not-found --timeout=120s",
            "k3s kubectl -n kube-system delete secret node-2.node-password.k3s --ignore-not-found",
        ]);
        assert.match(out, /node-2's previous installation is forgotten/);
    });
});
