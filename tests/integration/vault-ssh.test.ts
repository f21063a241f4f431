// The Vault bootstrap and configuration as a cluster runs them — the Vault CLI started over SSH on a host
// (there, `k3s kubectl exec` into each pod), tokens on its stdin — with the real engine: through a test host
// to two OpenBao raft servers on the test hosts' bridge. A refused SSH key fails naming the server and step,
// and the next up resumes; Vault ends configured with the root token revoked; the SSH key, the unseal keys and
// the tokens are in no file and no output in plain text — neither SSH key is in any file under the machine's
// temporary folders, the engine's folder or the test host's, after the refused run or the good one (each key
// is made for this test and its own files removed at once); a second up changes nothing.
import * as assert from "node:assert/strict";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Stack } from "@pulumi/pulumi/automation";
import { type Engine, projectStack, readTree, tempEngine } from "../helpers/engine";
import { filesHoldingKey, newSshKey, TEMP_FOLDERS } from "../helpers/keys";
import { type RaftServer, startOpenBaoRaft } from "@peoples-cloud/testkit";
import { startTestHosts, type TestHosts } from "../helpers/testhosts";
import { vaultProgram } from "../helpers/vault";

describe("vault bootstrap over SSH with the real engine", function () {
    this.timeout(10 * 60_000);
    let lab: TestHosts;
    let engine: Engine;
    let servers: RaftServer[] = [];
    let stack: Stack;
    let privateKey: string;
    let goodKey: string;

    before(async () => {
        lab = startTestHosts("pcvlt", 1);
        engine = await tempEngine();
        servers = await Promise.all(["vault-0", "vault-1"].map((id) => startOpenBaoRaft(id, lab.bridgeAddress)));
        const good = newSshKey("peoples-cloud-vault-ssh-test");
        lab.authorize(good.publicKey);
        goodKey = good.privateKey;
        privateKey = newSshKey("stranger").privateKey;
        const host = lab.hosts[0];
        stack = await projectStack(
            engine,
            "vault-ssh",
            vaultProgram(servers, {
                ssh: () => pulumi.secret({ host: host.address, user: "root", privateKey }),
                auditFile: path.join(servers[0].dir, "audit.log"),
            }),
        );
    });
    after(async () => {
        await Promise.all(servers.map((s) => s.stop()));
        engine?.cleanup();
        lab?.stop();
    });

    it("fails naming the server and step when SSH refuses the key, then initialises, joins, unseals and configures", async () => {
        const keyFiles = (key: string) => filesHoldingKey(key, [...TEMP_FOLDERS, engine.root, lab.dir]);
        const strangerKey = privateKey;
        await assert.rejects(stack.up(), /vault status on vault-0 failed: .*Permission denied/);
        assert.equal((await fetch(`${servers[0].url}/v1/sys/health`)).status, 501, "vault-0 left uninitialised");
        assert.deepEqual(keyFiles(strangerKey), [], "the refused run left its SSH key on disk");

        privateKey = goodKey;
        const up = await stack.up();
        // The stack and the bootstrap component exist from the failed run. The configuration component waits on
        // the bootstrap's children, so it comes now with them: the initialisation, two unseals, the admin token,
        // 17 settings and the root token's revocation.
        assert.deepEqual(up.summary.resourceChanges, { create: 23, same: 2 });
        assert.deepEqual(up.outputs.sealed.value, [false, false]);
        for (const s of servers) {
            assert.ok([200, 429].includes((await fetch(`${s.url}/v1/sys/health`)).status), s.nodeId);
        }
        assert.deepEqual(keyFiles(goodKey), [], "the run left its SSH key on disk");

        const [rootToken, adminToken] = [up.outputs.rootToken.value as string, up.outputs.adminToken.value as string];
        const lookup = (token: string) =>
            fetch(`${servers[0].url}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": token } });
        assert.equal((await lookup(rootToken)).status, 403, "the root token is revoked");
        assert.equal((await lookup(adminToken)).status, 200);
        const mounts = (await (
            await fetch(`${servers[0].url}/v1/sys/mounts`, { headers: { "X-Vault-Token": adminToken } })
        ).json()) as { data: Record<string, unknown> };
        assert.ok(
            ["secret/", "transit/", "pki/"].every((m) => m in mounts.data),
            "configured",
        );

        const secrets = [goodKey.trim(), rootToken, adminToken, ...(up.outputs.unsealKeys.value as string[])];
        const onDisk = readTree(engine.root);
        assert.match(onDisk, /pulumi-nodejs:dynamic\/vault:Unseal/, "the state was not read");
        for (const secret of secrets) {
            assert.ok(!onDisk.includes(secret), "a secret is in plain text in the state");
            assert.ok(!up.stdout.includes(secret) && !up.stderr.includes(secret), "a secret was printed");
        }

        const again = await stack.up();
        assert.deepEqual(again.summary.resourceChanges, { same: 25 });
        assert.deepEqual(keyFiles(goodKey), [], "the second run left its SSH key on disk");
    });
});
