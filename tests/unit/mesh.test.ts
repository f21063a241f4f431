// The WireGuard mesh's resource graph under mocks; its behaviour on real hosts is in
// tests/integration/infra-mesh.test.ts.
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { WireGuardMesh } from "../../components/infra/mesh";
import { settled, unwrap, useMocks } from "../helpers/mocks";

const node = (name: string, i: number) => ({
    name,
    publicAddress: `192.0.2.${i + 10}`,
    meshAddress: `10.99.0.${i + 1}`,
    connection: pulumi.secret({ host: `192.0.2.${i + 10}`, user: "root", privateKey: "test-only-key" }),
});

describe("wireguard mesh graph", () => {
    it("installs wireguard-tools, makes a key and applies wg0 on every node", async () => {
        // What the key step prints: the node's public key (its private key never leaves the node).
        const recorded = await useMocks("dev", { values: {}, secretKeys: new Set<string>() }, (r) =>
            r.name.endsWith("-key") ? { stdout: `public key of ${r.name}` } : {},
        );
        const mesh = new WireGuardMesh("mesh", { nodes: ["ana", "ben", "carla"].map(node), prefixLength: 16 });
        // Each node's own key step's output, by node name; public keys, so plain (the stack exports them).
        assert.deepEqual(await unwrap(mesh.publicKeys), {
            value: {
                ana: "public key of mesh-ana-key",
                ben: "public key of mesh-ben-key",
                carla: "public key of mesh-carla-key",
            },
            secret: false,
        });
        // wg0's config waits on the public keys: registered once the key steps' outputs are resolved.
        await settled();
        const scripts = recorded.filter((r) => r.type === "pulumi-nodejs:dynamic/infra:RemoteScript");
        assert.deepEqual(
            scripts.map((s) => `${String(s.inputs.node)}: ${String(s.inputs.step)}`).sort(),
            ["ana", "ben", "carla"]
                .flatMap((n) => [
                    `${n}: apply wg0`,
                    `${n}: generate the WireGuard key`,
                    `${n}: install wireguard-tools`,
                ])
                .sort(),
        );
        for (const s of scripts) {
            assert.ok(
                String(s.inputs.script).startsWith("#!/usr/bin/env bash\n"),
                `${String(s.inputs.step)} is not a script`,
            );
        }
        const keygen = scripts.filter((s) => s.inputs.step === "generate the WireGuard key");
        assert.ok(
            keygen.every((s) => s.inputs.keepStdout === true),
            "the public key is not kept",
        );
    });
});
