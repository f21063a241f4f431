// The infra layer with the real engine on a bare-metal config of real test hosts (network namespaces with
// sshd): every host reaches every other over wg0, private keys stay on their hosts, a second up changes
// nothing, a fourth host joins while a ping between two others loses nothing, and leaves again everywhere; a
// host wiped as a reinstall wipes it gets its steps again on the next up (a new key, the others' peers updated).
// With K3s switched on (its binary cannot be had here), the failing step names its host and step, the
// cluster token reached each member's own /etc/rancher/k3s (not the machine's, not a non-member's) but
// nothing in plain text, and a re-run resumes where it stopped.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Stack } from "@pulumi/pulumi/automation";
import { meshAddressOf } from "../../lib/mesh-addresses";
import { InfraLayer } from "../../components/infra/layer";
import { settingsSchema } from "../../stacks/schema";
import { type Engine, projectStack, readTree, tempEngine } from "../helpers/engine";
import { filesHoldingKey } from "../helpers/keys";
import { machineFolderState, startTestHosts, type TestHost, type TestHosts } from "../helpers/testhosts";
import { infraArgs } from "../../program";

describe("infra mesh with the real engine on test hosts", function () {
    this.timeout(10 * 60_000);
    let engine: Engine;
    let lab: TestHosts;
    let stack: Stack;
    let members = 3;
    let k3sOn = false;
    const mesh = (h: TestHost) => meshAddressOf(h.name, "10.99.0.0/16");
    let machineBefore: string[];

    before(async () => {
        lab = startTestHosts("pcinf", 4);
        // After the hosts' start, which makes the mount points (empty folders) the hosts' own are mounted on.
        machineBefore = machineFolderState();
        engine = await tempEngine();
        const privateKey = fs.readFileSync(lab.clientKeyPath, "utf8");
        stack = await projectStack(engine, "mesh", () => {
            const settings = settingsSchema.parse({
                nodes: {
                    provider: "bare-metal",
                    hosts: lab.hosts.slice(0, members).map((h, i) => ({
                        name: h.name,
                        address: h.address,
                        role: i < 3 ? "server" : "agent",
                    })),
                },
                k3s: k3sOn ? { airgapDir: "/opt/peoples-cloud-k3s" } : { enabled: false },
            });
            const infra = new InfraLayer(
                "infra",
                infraArgs({
                    project: "peoples-cloud",
                    stack: "mesh",
                    settings,
                    secrets: { sshPrivateKey: pulumi.secret(privateKey) },
                }),
            );
            return Promise.resolve({ publicKeys: infra.meshPublicKeys });
        });
    });
    after(() => {
        engine?.cleanup();
        lab?.stop();
    });

    const ping = (from: TestHost, to: TestHost) => lab.inNamespace(from, ["ping", "-c", "1", "-W", "3", mesh(to)]);
    const peers = async (h: TestHost) => (await lab.run(h, "wg show wg0 peers")).trim().split("\n").filter(Boolean);

    it("brings up a mesh in which every host reaches every other", async () => {
        const up = await stack.up();
        assert.equal(
            up.summary.resourceChanges?.create,
            1 + 2 + 3 * 4,
            "stack, layer and mesh; per host its installation and 3 scripts",
        );
        const [a, b, c] = lab.hosts;
        for (const [from, to] of [
            [a, b],
            [a, c],
            [b, a],
            [b, c],
            [c, a],
            [c, b],
        ])
            ping(from, to);
        assert.throws(() => ping(a, lab.hosts[3]), "a host outside the mesh answered");
        assert.equal((await peers(a)).length, 2);

        // Each private key exists on its host only: not in the state, not in anything the engine printed.
        const onDisk = readTree(engine.root);
        assert.match(onDisk, /pulumi-nodejs:dynamic\/infra:RemoteScript/, "the state was not read");
        for (const host of lab.hosts.slice(0, 3)) {
            const privateKey = (await lab.run(host, "cat /etc/wireguard/wg0.key")).trim();
            assert.match(privateKey, /^[A-Za-z0-9+/]{43}=$/);
            assert.ok(!onDisk.includes(privateKey), `${host.name}'s private key is in the state`);
            assert.ok(!up.stdout.includes(privateKey) && !up.stderr.includes(privateKey), "printed by the engine");
        }
        const sshKey = fs.readFileSync(lab.clientKeyPath, "utf8");
        assert.deepEqual(filesHoldingKey(sshKey, [engine.root]), [], "the SSH key is in plain text in the state");
    });

    it("changes nothing on a second up", async () => {
        const again = await stack.up();
        assert.deepEqual(again.summary.resourceChanges, { same: 15 });
    });

    it("joins a fourth host while a ping between two others loses nothing, then removes it everywhere", async () => {
        const [a, b] = lab.hosts;
        const pinger = spawn("ip", ["netns", "exec", a.namespace, "ping", "-i", "0.2", mesh(b)], {
            stdio: ["ignore", "pipe", "ignore"],
        });
        let pingOutput = "";
        pinger.stdout.on("data", (d: Buffer) => (pingOutput += d.toString()));
        members = 4;
        const grown = await stack.up();
        await new Promise((r) => setTimeout(r, 1_000));
        const stopped = new Promise((r) => pinger.once("exit", r));
        pinger.kill("SIGINT");
        await stopped;
        // Only the ping in flight when SIGINT came may lack its reply; any other missing one was lost.
        const sent = Number(/(\d+) packets transmitted/.exec(pingOutput)?.[1] ?? 0);
        const answered = new Set([...pingOutput.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])));
        assert.ok(sent >= 5, `too few pings to tell: ${sent}`);
        const lost = Array.from({ length: sent - 1 }, (_, i) => i + 1).filter((seq) => !answered.has(seq));
        assert.deepEqual(lost, [], "pings were lost while the fourth host joined");
        // The new host's installation and three scripts, and wg0 re-applied on the three others.
        assert.deepEqual(grown.summary.resourceChanges, { create: 4, update: 3, same: 12 });
        const d = lab.hosts[3];
        for (const from of [a, b, lab.hosts[2]]) {
            ping(from, d);
            ping(d, from);
        }

        members = 3;
        const shrunk = await stack.up();
        assert.deepEqual(shrunk.summary.resourceChanges, { delete: 4, update: 3, same: 12 });
        for (const host of lab.hosts.slice(0, 3)) assert.equal((await peers(host)).length, 2, host.name);
        assert.throws(() => ping(a, d), "the removed host is still reachable");
    });

    it("gives a reinstalled host its steps again on the next up: a new key, the others' peers updated", async () => {
        const [a, b, c] = lab.hosts;
        const keyBefore = (await lab.run(c, "wg pubkey </etc/wireguard/wg0.key")).trim();
        // What reinstalling the machine does to it: WireGuard gone, its key and the program's mark with it.
        await lab.run(c, "wg-quick down wg0 && rm -rf /etc/wireguard/* /var/lib/peoples-cloud/*");
        assert.throws(() => ping(a, c), "the wiped host still answers in the mesh");

        const seen = await stack.preview();
        // Its installation, its three steps, and wg0 on the two others (its new key).
        assert.deepEqual(seen.changeSummary, { update: 1 + 3 + 2, same: 9 });
        const up = await stack.up();
        assert.deepEqual(up.summary.resourceChanges, { update: 6, same: 9 });
        const keyAfter = (await lab.run(c, "wg pubkey </etc/wireguard/wg0.key")).trim();
        assert.notEqual(keyAfter, keyBefore, "the reinstalled host kept no key, yet has its old one");
        assert.equal((up.outputs.publicKeys.value as Record<string, string>)[c.name], keyAfter);
        for (const host of [a, b]) assert.ok((await peers(host)).includes(keyAfter), `${host.name}: no new peer key`);
        for (const [from, to] of [
            [a, c],
            [c, a],
            [b, c],
            [c, b],
        ])
            ping(from, to);
        assert.equal((await lab.run(c, "cat /var/lib/peoples-cloud/installation")).trim(), "2");
        assert.deepEqual((await stack.up()).summary.resourceChanges, { same: 15 });
    });

    it("with K3s on and no binary to install: names the host and step, keeps the token secret, resumes", async () => {
        k3sOn = true;
        const failed = await stack.up().then(
            () => assert.fail("the up succeeded without a K3s binary"),
            (err: Error) => err.message,
        );
        const first = lab.hosts[0];
        assert.match(failed, new RegExp(`install K3s \\(server\\) on ${first.name} failed \\(exit 1\\)`));
        assert.match(failed, /\/opt\/peoples-cloud-k3s\/k3s missing \(air-gapped install\)/);

        assert.deepEqual(machineFolderState(), machineBefore, "the machine's own /etc/rancher/k3s was written");
        const token = (await lab.run(first, "cat /etc/rancher/k3s/cluster-token")).trim();
        assert.match(token, /^[0-9a-f]{64}$/);
        // Each member holds the token in a file of its own (its /etc/rancher/k3s is its own folder here).
        const tokenFiles = lab.hosts.slice(0, 3).map((h) => path.join(h.home, "etc-rancher-k3s", "cluster-token"));
        for (const [i, file] of tokenFiles.entries()) {
            const host = lab.hosts[i];
            assert.equal(fs.readFileSync(file, "utf8").trim(), token, `${host.name} did not receive the token`);
            assert.equal((await lab.run(host, "cat /etc/rancher/k3s/cluster-token")).trim(), token, host.name);
            assert.equal((await lab.run(host, "stat -c %a /etc/rancher/k3s/cluster-token")).trim(), "600");
        }
        assert.equal(new Set(tokenFiles.map((f) => fs.statSync(f).ino)).size, 3, "the hosts share a token file");
        const outsider = lab.hosts[3];
        assert.equal((await lab.run(outsider, "ls -A /etc/rancher/k3s")).trim(), "", "a non-member got the token");
        const onDisk = readTree(engine.root);
        assert.match(onDisk, /dynamic\/infra:RandomToken/, "the state was not read");
        assert.ok(!onDisk.includes(token), "the K3s token is in plain text in the state");
        assert.ok(!failed.includes(token), "the engine printed the K3s token");

        // A re-run starts where the first one stopped: the token and its files stay, the installs are next.
        const next = await stack.preview();
        assert.equal(
            next.changeSummary.same,
            15 + 1 + 3 + 1,
            "stack, layer, mesh, installations and scripts; K3s component, token, its files",
        );
        assert.ok((next.changeSummary.create ?? 0) >= 3, "the installs are not planned again");
        assert.equal(next.changeSummary.delete ?? 0, 0);
    });
});
