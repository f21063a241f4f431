// The mesh scripts on real hosts: keys born on each host, wg0 up with wireguard-go, traffic across the mesh.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderWireGuardConfig } from "../../components/infra/wireguard";
import { repoRoot } from "../helpers/stackConfig";
import { startTestHosts, type TestHost, type TestHosts } from "../helpers/testhosts";

const scripts = path.join(repoRoot, "components", "infra", "scripts");
const keygen = fs.readFileSync(path.join(scripts, "wg-keygen.sh"), "utf8");
const apply = fs.readFileSync(path.join(scripts, "wg-apply.sh"), "utf8");
const meshAddress = (i: number) => `10.99.0.${i + 1}`;

describe("WireGuard mesh on test hosts", function () {
    this.timeout(120_000);
    let lab: TestHosts;
    before(() => {
        lab = startTestHosts("pcmesh", 3);
    });
    after(() => lab?.stop());

    const config = (self: number, members: number[], keys: string[]) =>
        renderWireGuardConfig({
            address: `${meshAddress(self)}/24`,
            listenPort: 51820,
            peers: members
                .filter((j) => j !== self)
                .map((j) => ({
                    name: lab.hosts[j].name,
                    publicKey: keys[j],
                    endpoint: `${lab.hosts[j].address}:51820`,
                    allowedIps: [`${meshAddress(j)}/32`],
                })),
        });
    const ping = (from: TestHost, to: string) => lab.inNamespace(from, ["ping", "-c", "1", "-W", "2", to]);

    it("generates each private key on its host and returns only the public key", async () => {
        const keys = await Promise.all(lab.hosts.map((h) => lab.run(h, keygen)));
        for (const [i, key] of keys.entries()) {
            assert.match(key.trim(), /^[A-Za-z0-9+/]{43}=$/);
            assert.equal((await lab.run(lab.hosts[i], keygen)).trim(), key.trim(), "a re-run keeps the key");
            const mode = await lab.run(lab.hosts[i], "stat -c %a /etc/wireguard/wg0.key");
            assert.equal(mode.trim(), "600");
            const privateKey = await lab.run(lab.hosts[i], "cat /etc/wireguard/wg0.key");
            assert.notEqual(privateKey.trim(), key.trim());
            assert.ok(!key.includes(privateKey.trim()), "keygen printed the private key");
        }
        assert.equal(new Set(keys).size, keys.length, "each host has its own key");
    });

    it("brings the mesh up and carries traffic between hosts", async () => {
        const keys = (await Promise.all(lab.hosts.map((h) => lab.run(h, keygen)))).map((k) => k.trim());
        const [a, b] = [0, 1];
        for (const i of [a, b]) {
            const out = await lab.run(lab.hosts[i], apply, config(i, [a, b], keys));
            assert.match(out, /wg0 up/);
        }
        ping(lab.hosts[a], meshAddress(b));
        ping(lab.hosts[b], meshAddress(a));
        assert.throws(() => ping(lab.hosts[a], meshAddress(2)), "a host outside the mesh answered");
    });

    it("adds a peer without dropping live tunnels, and drops a removed peer", async () => {
        const keys = (await Promise.all(lab.hosts.map((h) => lab.run(h, keygen)))).map((k) => k.trim());
        const handshakeBefore = await lab.run(lab.hosts[0], "wg show wg0 latest-handshakes");
        const ifindex = () => lab.inNamespace(lab.hosts[0], ["cat", "/sys/class/net/wg0/ifindex"]).trim();
        const ifindexBefore = ifindex();
        const all = [0, 1, 2];
        for (const i of all) {
            assert.match(await lab.run(lab.hosts[i], apply, config(i, all, keys)), /wg0 (up|peers synced)/);
        }
        for (const i of all) for (const j of all) if (i !== j) ping(lab.hosts[i], meshAddress(j));
        const handshakeAfter = await lab.run(lab.hosts[0], "wg show wg0 latest-handshakes");
        const peerB = keys[1];
        const line = (text: string) => text.split("\n").find((l) => l.startsWith(peerB)) ?? "";
        assert.equal(line(handshakeAfter), line(handshakeBefore), "the tunnel to an unchanged peer was rebuilt");
        assert.equal(ifindex(), ifindexBefore, "wg0 was recreated instead of synced");

        for (const i of [0, 1]) await lab.run(lab.hosts[i], apply, config(i, [0, 1], keys));
        assert.ok(!(await lab.run(lab.hosts[0], "wg show wg0 peers")).includes(keys[2]), "removed peer still there");
        ping(lab.hosts[0], meshAddress(1));
    });

    it("refuses a config that carries a private key", async () => {
        await assert.rejects(
            lab.run(lab.hosts[0], apply, "[Interface]\nPrivateKey = x\n"),
            /must not carry a private key/,
        );
    });
});
