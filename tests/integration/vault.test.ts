// The Vault layer's bootstrap with the real engine against three real OpenBao servers with raft storage:
// initialised once, joined, unsealed; a failed step names its server and step and a re-run resumes; keys and
// root token only encrypted in state; a second up changes nothing; restarted (sealed) servers are unsealed,
// also when all of them restarted at once.
import * as assert from "node:assert/strict";
import type { Stack, UpResult } from "@pulumi/pulumi/automation";
import { type Engine, projectStack, readTree, tempEngine } from "../helpers/engine";
import { type RaftServer, startOpenBaoRaft } from "@peoples-cloud/testkit";
import { vaultProgram } from "../helpers/vault";

async function health(server: RaftServer): Promise<number> {
    return (await fetch(`${server.url}/v1/sys/health`)).status;
}

describe("vault bootstrap with the real engine and OpenBao raft", function () {
    this.timeout(10 * 60_000);
    let engine: Engine;
    let servers: RaftServer[] = [];
    let stack: Stack;
    const runs: UpResult[] = [];

    before(async () => {
        engine = await tempEngine();
        servers = await Promise.all(["node-1", "node-2", "node-3"].map((id) => startOpenBaoRaft(id)));
        stack = await projectStack(engine, "vault", vaultProgram(servers));
    });
    after(async () => {
        await Promise.all(servers.map((s) => s.stop()));
        engine?.cleanup();
    });

    it("fails naming the server and step when one is down, and resumes on the next up", async () => {
        await servers[2].halt();
        await assert.rejects(stack.up(), (err: Error) => {
            assert.match(err.message, /vault status on node-3 failed/);
            return true;
        });
        assert.equal(await health(servers[0]), 200, "node-1 is initialised and unsealed");

        await servers[2].restart();
        const resumed = await stack.up();
        runs.push(resumed);
        assert.deepEqual(resumed.summary.resourceChanges, { create: 1, same: 5 }, "only node-3's unseal ran");
        assert.deepEqual(resumed.outputs.sealed.value, [false, false, false]);
        for (const server of servers) assert.ok([200, 429].includes(await health(server)), server.nodeId);

        const rootToken = resumed.outputs.rootToken.value as string;
        const raft = (await (
            await fetch(`${servers[0].url}/v1/sys/storage/raft/configuration`, {
                headers: { "X-Vault-Token": rootToken },
            })
        ).json()) as { data: { config: { servers: { node_id: string }[] } } };
        assert.deepEqual(raft.data.config.servers.map((s) => s.node_id).sort(), ["node-1", "node-2", "node-3"]);
    });

    it("keeps the unseal keys and root token out of every file and all engine output", () => {
        const outputs = runs[0].outputs;
        assert.equal(outputs.rootToken.secret, true);
        assert.equal(outputs.unsealKeys.secret, true);
        const keys = outputs.unsealKeys.value as string[];
        assert.equal(keys.length, 3);
        const onDisk = readTree(engine.root);
        assert.match(onDisk, /"type":\s*"pulumi-nodejs:dynamic\/vault:Initialization"/, "the state was not read");
        for (const secret of [outputs.rootToken.value as string, ...keys]) {
            assert.ok(!onDisk.includes(secret), "a key or the root token is in plain text in the state");
            assert.ok(!runs[0].stdout.includes(secret) && !runs[0].stderr.includes(secret), "printed by the engine");
            assert.ok(!servers.some((s) => s.log().includes(secret)), "logged by OpenBao");
        }
    });

    it("changes nothing on a second up", async () => {
        const again = await stack.up();
        runs.push(again);
        assert.deepEqual(again.summary.resourceChanges, { same: 6 });
        assert.equal(again.outputs.rootToken.value, runs[0].outputs.rootToken.value);
    });

    it("unseals servers that restarted sealed on the next up", async () => {
        await Promise.all([servers[0].restart(), servers[1].restart()]);
        assert.equal(await health(servers[0]), 503, "a restarted server is sealed");
        const healed = await stack.up();
        assert.deepEqual(healed.summary.resourceChanges, { update: 2, same: 4 });
        for (const server of servers) assert.ok([200, 429].includes(await health(server)), server.nodeId);
    });

    it("unseals every server after all of them restarted at once (a power cut): none waits for a leader alone", async () => {
        await Promise.all(servers.map((s) => s.restart()));
        const healed = await stack.up();
        assert.deepEqual(healed.summary.resourceChanges, { update: 3, same: 3 });
        for (const server of servers) assert.ok([200, 429].includes(await health(server)), server.nodeId);
    });
});
