import * as assert from "node:assert/strict";
import { meshAddressOf, meshCollisions } from "../../lib/mesh-addresses";
import { validateConfig } from "../../stacks/config";
import { rawConfig } from "../helpers/stackConfig";

const names = (n: number) => Array.from({ length: n }, (_, i) => `node-${i + 1}`);

describe("mesh addresses", () => {
    it("depend only on a member's own name: adding or removing others moves nobody", () => {
        const before = new Map(names(5).map((n) => [n, meshAddressOf(n, "10.99.0.0/16")]));
        const after = new Map(names(40).map((n) => [n, meshAddressOf(n, "10.99.0.0/16")]));
        for (const [name, address] of before) assert.equal(after.get(name), address);
    });

    it("stay inside the mesh, never its network or broadcast address", () => {
        for (const name of names(500)) {
            const last = Number(meshAddressOf(name, "10.99.7.0/29").split(".")[3]);
            assert.ok(last >= 1 && last <= 6, `${name} -> .${last}`);
            assert.match(meshAddressOf(name, "10.99.0.0/16"), /^10\.99\.\d+\.\d+$/);
        }
    });

    it("are unique for the stacks' members in the default mesh", () => {
        assert.deepEqual(
            meshCollisions(
                ["node-1", "node-2", "server-1", "server-2", "server-3", "agent-1", "agent-2"],
                "10.99.0.0/16",
            ),
            [],
        );
    });

    it("collide in a tiny mesh, and the config says which name to change", () => {
        const hosts = names(6).map((name, i) => ({
            name,
            address: `192.0.2.${i + 10}`,
            role: i === 0 ? "server" : "agent",
        }));
        assert.ok(
            meshCollisions(
                hosts.map((h) => h.name),
                "10.99.7.0/29",
            ).length > 0,
        );
        const result = validateConfig(
            rawConfig(
                {
                    "peoples-cloud:nodes": { provider: "bare-metal", hosts },
                    "peoples-cloud:mesh": { cidr: "10.99.7.0/29" },
                },
                { "peoples-cloud:sshPrivateKey": "test-only" },
            ),
        );
        assert.ok(!result.ok);
        const problem = result.problems.find((p) => /gets the same mesh address as/.test(p));
        assert.match(
            problem ?? "",
            /^peoples-cloud:nodes\.hosts\[\d\]\.name: 'node-\d' gets the same mesh address as 'node-\d'/,
        );
    });
});
