// The test hosts themselves: sets started side by side (as by a CI run beside a working tree's) share no
// address and no name, each host has its own WireGuard and K3s folders, apart from the machine's and removed
// with the set, and a set whose owner died is cleaned when the next one starts.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isRunning } from "../helpers/processes";
import { repoRoot } from "../helpers/stackConfig";
import { HOST_OWN_FOLDERS, machineFolderState, startTestHosts, type TestHosts } from "../helpers/testhosts";

const script = path.join(repoRoot, "scripts", "testhosts.sh");

describe("test hosts", function () {
    this.timeout(60_000);
    const labs: TestHosts[] = [];
    after(() => labs.forEach((lab) => lab.stop()));

    it("gives sets started side by side their own subnet and names, each host its own sshd", async () => {
        labs.push(startTestHosts("pcta", 2), startTestHosts("pctb", 2));
        const [a, b] = labs;
        assert.notEqual(a.bridgeAddress, b.bridgeAddress);
        const subnet = (address: string) => address.split(".").slice(0, 3).join(".");
        for (const lab of labs) {
            for (const host of lab.hosts) assert.equal(subnet(host.address), subnet(lab.bridgeAddress));
        }
        const names = [...a.hosts, ...b.hosts].map((h) => h.namespace);
        assert.equal(new Set(names).size, 4, `namespaces shared: ${names.join(" ")}`);
        for (const lab of labs) {
            for (const host of lab.hosts) {
                assert.equal((await lab.run(host, "hostname -I")).trim(), host.address);
            }
        }
    });

    it("gives each host its own /etc/wireguard, /run/wireguard and /etc/rancher/k3s, removed with the set", async () => {
        const machineBefore = machineFolderState();
        const lab = startTestHosts("pctd", 2);
        const [a, b] = lab.hosts;
        try {
            for (const folder of HOST_OWN_FOLDERS) {
                await lab.run(a, `echo secret-of-${a.name} >${folder}/peoples-cloud-test`);
                const local = path.join(a.home, folder.slice(1).replace(/\//g, "-"), "peoples-cloud-test");
                assert.equal(
                    fs.readFileSync(local, "utf8"),
                    `secret-of-${a.name}\n`,
                    `${folder} is not the host's own`,
                );
                assert.equal((await lab.run(b, `ls -A ${folder}`)).trim(), "", `${folder} is shared by the hosts`);
            }
            assert.deepEqual(machineFolderState(), machineBefore, "a host wrote into the machine's own folders");
        } finally {
            lab.stop();
        }
        assert.ok(!fs.existsSync(lab.dir), "the set's folder, with the hosts' files, is left behind");
    });

    it("cleans a set whose owner died when the next set starts", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-hosts-orphan-"));
        // `; true` keeps the shell from exec'ing the script: the script's parent, its owner, exits with it.
        execFileSync("bash", ["-c", `bash '${script}' up orphan 1 '${dir}' >/dev/null; true`]);
        const { namespace } = (
            JSON.parse(fs.readFileSync(path.join(dir, "hosts.json"), "utf8")) as { hosts: { namespace: string }[] }
        ).hosts[0];
        const pids = execFileSync("ip", ["netns", "pids", namespace], { encoding: "utf8" })
            .split(/\s+/)
            .filter(Boolean);
        assert.ok(pids.length > 0, "the orphan's sshd is not running");

        labs.push(startTestHosts("pctc", 1));
        const running = pids.filter(isRunning);
        assert.deepEqual(running, [], "the dead owner's sshd still runs");
        assert.ok(!fs.existsSync(dir), "the dead owner's folder is left behind");
    });
});
