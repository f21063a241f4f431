// The family tool as a person types it, with the real engine on test hosts (K3s off: it cannot run here):
// every bad input refused with one message and nothing written; `new` and `up` of a family on three hosts,
// `status`, a second `up` that changes nothing; a second family on hosts of its own in the same backend; a
// fourth network namespace playing a laptop that joins with a key it made itself, reaches every node, and is
// removed again. The laptop's key, the SSH key and the passphrase are looked for in every file and output.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { meshAddressOf } from "../../lib/mesh-addresses";
import { readTree } from "../helpers/engine";
import { filesHolding, filesHoldingKey } from "../helpers/keys";
import { repoRoot } from "../helpers/stackConfig";
import { startTestHosts, type TestHost, type TestHosts } from "../helpers/testhosts";

const tool = path.join(repoRoot, "cli", "peoples-cloud");
const VALID_KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
}

describe("the family tool with the real engine on test hosts", function () {
    this.timeout(15 * 60_000);
    let root: string;
    let project: string;
    let env: Record<string, string>;
    let lab: TestHosts;
    let other: TestHosts;
    /** Everything the tool printed, to search for secrets at the end. */
    let printed = "";

    const args = (...a: string[]) => [...a, "--dir", project];
    const cli = (...a: string[]): Promise<Run> =>
        new Promise((resolve) => {
            const child = spawn(tool, a, { env, stdio: ["ignore", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            child.on("close", (code) => {
                printed += stdout + stderr;
                resolve({ code, stdout, stderr });
            });
        });
    const ok = async (...a: string[]) => {
        const run = await cli(...a);
        assert.equal(run.code, 0, `peoples-cloud ${a.join(" ")} failed:\n${run.stderr}`);
        return run;
    };
    const json = async <T>(...a: string[]) => JSON.parse((await ok(...a, "--json")).stdout) as T;
    /** On a host, over SSH: the tool as the person on that machine runs it (its own /etc/wireguard). */
    const onHost = async (host: TestHost, ...a: string[]) => {
        const vars = Object.entries(env)
            .filter(([k]) => k.startsWith("XDG_") || k === "PATH")
            .map(([k, v]) => `${k}='${v}'`)
            .join(" ");
        const out = await lab.run(host, `${vars} ${tool} ${a.map((x) => `'${x}'`).join(" ")}`);
        printed += out;
        return out;
    };

    /** Each file's path and a hash of its content: a byte-for-byte picture of the folders. */
    const picture = () =>
        [project, path.join(root, "state", "peoples-cloud", "backend"), path.join(root, "config")].flatMap((dir) =>
            fs.existsSync(dir)
                ? fs
                      .readdirSync(dir, { recursive: true, withFileTypes: true })
                      .filter((e) => e.isFile())
                      .map((e) => {
                          const file = path.join(e.parentPath, e.name);
                          return `${file} ${createHash("sha256").update(fs.readFileSync(file)).digest("hex")}`;
                      })
                      .sort()
                : [`${dir} absent`],
        );

    const mesh = (h: TestHost) => meshAddressOf(h.name, "10.99.0.0/16");
    const peers = async (h: TestHost) => (await lab.run(h, "wg show wg0 peers")).trim().split("\n").filter(Boolean);
    const ping = (from: TestHost, to: string) => lab.inNamespace(from, ["ping", "-c", "1", "-W", "3", to]);

    before(() => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-cli-"));
        project = path.join(root, "project");
        fs.mkdirSync(project);
        fs.copyFileSync(path.join(repoRoot, "Pulumi.yaml"), path.join(project, "Pulumi.yaml"));
        // The dynamic provider plugin resolves @pulumi/pulumi from the project folder.
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(project, "node_modules"));
        env = Object.fromEntries(
            Object.entries({
                ...process.env,
                XDG_STATE_HOME: path.join(root, "state"),
                XDG_CONFIG_HOME: path.join(root, "config"),
            }).filter(([k, v]) => v !== undefined && !k.startsWith("PULUMI_")),
        );
        lab = startTestHosts("pccli", 4);
        other = startTestHosts("pccl2", 1);
    });
    after(() => {
        lab?.stop();
        other?.stop();
        if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    const hostFlags = (hosts: TestHost[]) => hosts.flatMap((h) => ["--host", `${h.name}=${h.address}`]);

    it("makes a family with `new`, storing the SSH key encrypted, and prints the next command", async () => {
        const run = await ok(
            ...args("new", "smith", ...hostFlags(lab.hosts.slice(0, 3)), "--without-k3s"),
            ...["--member", "ana", "--member", "ben", "--ssh-key", lab.clientKeyPath],
        );
        assert.match(run.stdout, /Next: peoples-cloud up smith/);
        const file = fs.readFileSync(path.join(project, "Pulumi.smith.yaml"), "utf8");
        assert.match(file, /peoples-cloud:sshPrivateKey:\n\s+secure: v1:/);
        assert.deepEqual(filesHoldingKey(fs.readFileSync(lab.clientKeyPath, "utf8"), [project, root]), []);
    });

    it("refuses every bad input with one clear message and writes nothing", async () => {
        const key = path.join(root, "not-a-key");
        fs.writeFileSync(key, "hello\n");
        const host = `--host=n1=${other.hosts[0].address}`;
        const cases: [string[], RegExp][] = [
            [args("new", "Smith!", host), /'Smith!' is not a family name/],
            [args("new", "smith", host, "--ssh-key", lab.clientKeyPath), /Pulumi\.smith\.yaml already exists/],
            [args("new", "jones", host, "--colour", "blue"), /Unknown option '--colour'/],
            [args("new", "jones", "--host", "n1"), /--host 'n1' has no address/],
            [args("new", "jones", "--host", "n1=192.0.2.1,colour=red"), /'colour=red' is not one of role=…/],
            [args("new", "jones"), /give either --hetzner or one --host/],
            [args("new", "jones", "--hetzner", host), /give either --hetzner or one --host/],
            [args("new", "jones", "--hetzner", "--servers", "two"), /--servers 'two' is not a number/],
            [
                args("new", "jones", "--hetzner", "--servers", "2", "--admin-cidr", "10.0.0.0/8"),
                /odd number of servers/,
            ],
            [args("new", "jones", "--hetzner", "--location", "mars"), /locations\[0\]/],
            [args("new", "jones", host, "--admin-cidr", "10.0.0/8"), /adminCidrs\[0\]: expected a CIDR/],
            [args("new", "jones", host, "--domain", "not a domain"), /domain: expected a DNS name/],
            [args("new", "jones", host, "--host", "n1=192.0.2.9"), /duplicate name 'n1'/],
            [
                args("new", "jones", host, "--ssh-key", path.join(root, "missing")),
                /--ssh-key: .*missing does not exist/,
            ],
            [args("new", "jones", host, "--ssh-key", key), /is not an SSH private key/],
            [args("new", "jones", host, "--member", "storage-kv-api"), /members\[0\]: is reserved/],
            [args("up", "jones"), /there is no family 'jones'/],
            [args("destroy", "smith"), /stdin is not a terminal/],
            [args("frobnicate", "smith"), /unknown command 'frobnicate'/],
            [
                args("device", "add", "phone", "--family", "smith", "--owner", "ana", "--public-key", "abc"),
                /expected a WireGuard public key/,
            ],
            [
                args("device", "add", "phone", "--family", "smith", "--owner", "zoe", "--public-key", VALID_KEY),
                /'zoe' is not one of the members/,
            ],
            [args("device", "add", "phone", "--family", "smith", "--public-key", VALID_KEY), /needs --owner/],
            [args("device", "add", "phone", "--owner", "ana", "--public-key", VALID_KEY), /name the family/],
            [args("device", "remove", "tablet", "--family", "smith"), /has no device 'tablet' \(its devices: none\)/],
            [args("device", "join", "laptop", "--family", "smith", "--wait", "soon"), /--wait 'soon' is not a number/],
            [
                args("device", "config", "laptop", "--family", "smith", "--owner", "ana"),
                /--owner is not an option of device config/,
            ],
            [args("status", "smith", "extra"), /unexpected argument 'extra'/],
            [
                args("restore", "smith", "--latest", "--snapshot", "2026-12-07T03:00:00Z"),
                /give --latest or --snapshot <time>, not both/,
            ],
            [args("restore", "smith", "--snapshot", "yesterday"), /--snapshot 'yesterday' is not a time/],
            [
                args("restore", "smith", "--latest"),
                /has no cluster with Vault in its stack: there is nothing to restore/,
            ],
            [args("recovery-kit", "smith"), /recovery-kit needs --out <file>/],
            [args("recover", key), /cannot be read as a recovery kit/],
        ];
        assert.ok(cases.length >= 15);
        const before = picture();
        for (const [argv, message] of cases) {
            const run = await cli(...argv);
            assert.equal(run.code, 2, `${argv.join(" ")}: exit ${run.code}\n${run.stderr}`);
            assert.match(run.stderr, message, argv.join(" "));
            assert.equal(run.stderr.trim().split("\n")[0].startsWith("peoples-cloud: "), true, run.stderr);
            assert.deepEqual(picture(), before, `${argv.join(" ")} wrote something`);
        }
        // A duplicate device: the first is added (a write), the second refused (none).
        await ok(...args("device", "add", "phone", "--family", "smith", "--owner", "ana", "--public-key", VALID_KEY));
        const withPhone = picture();
        const duplicate = await cli(
            ...args("device", "add", "phone", "--family", "smith", "--owner", "ben", "--public-key", VALID_KEY),
        );
        assert.equal(duplicate.code, 2);
        assert.match(duplicate.stderr, /has a device 'phone' already/);
        assert.deepEqual(picture(), withPhone);
        await ok(...args("device", "remove", "phone", "--family", "smith"));
    });

    it("brings the family up with progress resource by resource; status shows the nodes; a second up changes nothing", async () => {
        const up = await ok(...args("up", "smith"));
        assert.match(up.stderr, /creating infra-mesh-node-1-key …/);
        assert.match(up.stderr, /✓ created .* in \d+\.\d s/);
        assert.match(up.stdout, /up done in \d+ s: \d+ create/);
        const [a, b, c] = lab.hosts;
        ping(a, mesh(b));
        ping(b, mesh(c));
        ping(c, mesh(a));

        const status = await json<{ nodes: { name: string; meshAddress: string }[]; kubernetesApi?: string }>(
            ...args("status", "smith"),
        );
        assert.deepEqual(
            status.nodes.map((n) => [n.name, n.meshAddress]),
            lab.hosts.slice(0, 3).map((h) => [h.name, mesh(h)]),
        );
        assert.equal(status.kubernetesApi, undefined, "K3s is off");
        const again = await json<{ changes: Record<string, number> }>(...args("up", "smith"));
        assert.deepEqual(Object.keys(again.changes), ["same"]);
    });

    it("keeps a second family in the same backend apart: own state, own secrets, no shared peers", async () => {
        await ok(...args("new", "jones", ...hostFlags(other.hosts), "--without-k3s", "--ssh-key", other.clientKeyPath));
        await ok(...args("up", "jones"));
        const stacks = path.join(root, "state", "peoples-cloud", "backend", ".pulumi", "stacks", "peoples-cloud");
        const smith = fs.readFileSync(path.join(stacks, "smith.json"), "utf8");
        const jones = fs.readFileSync(path.join(stacks, "jones.json"), "utf8");
        assert.ok(!smith.includes(other.hosts[0].address) && !jones.includes(lab.hosts[0].address));
        const jonesKey = (await other.run(other.hosts[0], "wg show wg0 public-key")).trim();
        for (const h of lab.hosts.slice(0, 3)) assert.ok(!(await peers(h)).includes(jonesKey), h.name);
        assert.deepEqual(await other.run(other.hosts[0], "wg show wg0 peers"), "");
        assert.deepEqual(filesHoldingKey(fs.readFileSync(other.clientKeyPath, "utf8"), [root]), []);
    });

    it("writes a recovery kit with every secret still encrypted, and brings the family back from it elsewhere", async () => {
        const usb = path.join(root, "usb");
        fs.mkdirSync(usb);
        const kitFile = path.join(usb, "smith-kit.json");
        const made = await ok(...args("recovery-kit", "smith", "--out", kitFile));
        assert.match(made.stdout, /It holds .*the stack's settings and secrets/);
        assert.match(made.stdout, /Write the passphrase on paper and keep it apart from the stick/);
        assert.equal((fs.statSync(kitFile).mode & 0o777).toString(8), "600");
        const kit = fs.readFileSync(kitFile, "utf8");
        const parsed = JSON.parse(kit) as { stackFile: string; state: { deployment: { secrets_providers: object } } };
        assert.equal(parsed.stackFile, fs.readFileSync(path.join(project, "Pulumi.smith.yaml"), "utf8"));
        assert.match(parsed.stackFile, /peoples-cloud:sshPrivateKey:\n\s+secure:/);
        assert.deepEqual(Object.keys(parsed.state.deployment.secrets_providers), ["type", "state"]);
        assert.match(kit, /"ciphertext": "v1:/, "the state's secrets are not in the kit as ciphertext");
        assert.deepEqual(filesHoldingKey(fs.readFileSync(lab.clientKeyPath, "utf8"), [usb]), []);
        const again = await cli(...args("recovery-kit", "smith", "--out", kitFile));
        assert.equal(again.code, 2);
        assert.match(again.stderr, /exists: a kit never overwrites a file/);
        assert.equal(fs.readFileSync(kitFile, "utf8"), kit);

        // Another computer: its own project folder and backend, the passphrase copied from paper.
        const project2 = path.join(root, "project2");
        fs.mkdirSync(project2);
        fs.copyFileSync(path.join(project, "Pulumi.yaml"), path.join(project2, "Pulumi.yaml"));
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(project2, "node_modules"));
        const elsewhere = ["--dir", project2, "--backend", `file://${path.join(root, "backend2")}`];
        const back = await ok("recover", kitFile, ...elsewhere);
        assert.match(back.stdout, /The family 'smith' is back as of .*Next: peoples-cloud status smith/);
        const refused = await cli("recover", kitFile, ...elsewhere);
        assert.equal(refused.code, 2);
        assert.match(refused.stderr, /the family 'smith' is here already/);
        const status = JSON.parse((await ok("status", "smith", ...elsewhere, "--json")).stdout) as {
            nodes: { name: string }[];
        };
        assert.deepEqual(
            status.nodes.map((n) => n.name),
            lab.hosts.slice(0, 3).map((h) => h.name),
        );
        const preview = await ok("preview", "smith", ...elsewhere, "--json");
        assert.deepEqual(Object.keys((JSON.parse(preview.stdout) as { changes: object }).changes), ["same"]);
    });

    it("joins a laptop with a key made on it: it reaches every node, its key is nowhere else; removed, it is gone", async () => {
        const laptop = lab.hosts[3];
        const join = ["device", "join", "laptop", "--family", "smith", "--dir", project, "--json"];
        const first = JSON.parse(await onHost(laptop, ...join, "--wait", "0")) as { state: string; publicKey: string };
        assert.equal(first.state, "waiting");
        const keyFile = path.join(laptop.home, "etc-wireguard", "pc-smith.key");
        assert.equal((fs.statSync(keyFile).mode & 0o777).toString(8), "600");
        const privateKey = fs.readFileSync(keyFile, "utf8").trim();

        await ok(
            ...args("device", "add", "laptop", "--family", "smith", "--owner", "ben", "--public-key", first.publicKey),
        );
        const added = await json<{ changes: Record<string, number> }>(...args("up", "smith"));
        assert.equal(added.changes.update, 3, "wg0 re-applied on the three nodes");
        const config = await ok(...args("device", "config", "laptop", "--family", "smith", "--qr"));
        assert.match(config.stdout, /PostUp = wg set %i private-key \/etc\/wireguard\/pc-smith\.key/);
        assert.match(config.stdout, /Add peer \(/);

        const second = JSON.parse(await onHost(laptop, ...join, "--wait", "60")) as {
            state: string;
            meshAddress: string;
        };
        assert.equal(second.state, "up");
        assert.equal(fs.readFileSync(keyFile, "utf8").trim(), privateKey, "the key was replaced");
        for (const node of lab.hosts.slice(0, 3)) ping(laptop, mesh(node));
        const status = await json<{ devices: { name: string; inMesh: boolean }[] }>(...args("status", "smith"));
        assert.deepEqual(status.devices, [
            { name: "laptop", owner: "ben", meshAddress: second.meshAddress, inMesh: true },
        ]);

        // The private key: on the laptop only.
        const nodeHomes = lab.hosts.slice(0, 3).map((h) => h.home);
        assert.deepEqual(filesHolding([privateKey], [root, project, ...nodeHomes]), []);
        assert.ok(!printed.includes(privateKey), "the tool printed the laptop's private key");
        assert.ok(!readTree(path.join(root, "state")).includes(privateKey));

        await ok(...args("device", "remove", "laptop", "--family", "smith"));
        await ok(...args("up", "smith"));
        for (const node of lab.hosts.slice(0, 3)) {
            assert.ok(!(await peers(node)).includes(first.publicKey), `${node.name} still has the laptop`);
            assert.throws(() => ping(laptop, mesh(node)), `the laptop still reaches ${node.name}`);
        }
    });

    it("fails a step naming its host and step, says a re-run resumes, and keeps the K3s token it made secret", async () => {
        // K3s on, from a folder on the host that has no K3s in it (it cannot run here): the token is made and
        // written to the host, then the install fails.
        const file = path.join(project, "Pulumi.jones.yaml");
        const text = fs.readFileSync(file, "utf8");
        fs.writeFileSync(
            file,
            text.replace(
                /peoples-cloud:k3s:\n(\s+)enabled: false\n/,
                "peoples-cloud:k3s:\n$1airgapDir: /opt/peoples-cloud-k3s\n",
            ),
        );
        const [host] = other.hosts;
        const failed = await cli(...args("up", "jones"));
        assert.equal(failed.code, 1);
        assert.match(
            failed.stderr,
            new RegExp(`up of 'jones' failed:\\n.*install K3s \\(server\\) on ${host.name} failed`),
        );
        assert.match(failed.stderr, /\/opt\/peoples-cloud-k3s\/k3s missing \(air-gapped install\)/);
        assert.match(failed.stderr, /Run peoples-cloud up jones again to resume: finished steps are kept\./);
        const token = fs.readFileSync(path.join(host.home, "etc-rancher-k3s", "cluster-token"), "utf8").trim();
        assert.match(token, /^[0-9a-f]{64}$/);
        assert.ok(!printed.includes(token), "the tool printed the K3s token");
        assert.deepEqual(filesHolding([token], [root, project]), [], "the K3s token is in plain text in a file");
        fs.writeFileSync(file, text);
    });

    it("asks for the Hetzner token without echo and keeps it only encrypted", async () => {
        const token = randomBytes(32).toString("hex").slice(0, 64);
        // `script` gives the tool a terminal, as a person's; what it shows is what the person would see.
        const command = [tool, ...args("new", "garcia", "--hetzner", "--admin-cidr", "192.0.2.0/24")]
            .map((a) => `'${a}'`)
            .join(" ");
        const shown = await new Promise<string>((resolve) => {
            const child = spawn("script", ["-qefc", command, "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"] });
            let out = "";
            const collect = (d: Buffer) => {
                out += d.toString();
                if (out.includes("not shown): ") && child.stdin.writable) child.stdin.end(`${token}\n`);
            };
            child.stdout.on("data", collect);
            child.stderr.on("data", collect);
            child.on("close", () => resolve(out));
        });
        printed += shown;
        assert.match(shown, /Hetzner Cloud API token \(read & write; not shown\): /);
        assert.match(shown, /Made the family 'garcia'/);
        assert.ok(!shown.includes(token), "the token was echoed or printed");
        assert.match(
            fs.readFileSync(path.join(project, "Pulumi.garcia.yaml"), "utf8"),
            /hcloud:token:\n\s+secure: v1:/,
        );
        assert.deepEqual(filesHolding([token], [root, project, os.tmpdir()]), []);
    });

    it("printed no secret: SSH keys, the passphrase", () => {
        const passphrase = fs.readFileSync(path.join(root, "config", "peoples-cloud", "passphrase"), "utf8").trim();
        assert.ok(!printed.includes(passphrase));
        for (const key of [lab.clientKeyPath, other.clientKeyPath]) {
            const lines = fs.readFileSync(key, "utf8").trim().split("\n").slice(2, -1);
            for (const line of lines) assert.ok(!printed.includes(line), "an SSH key line was printed");
        }
    });
});
