// Time of `pulumi up` of the infra layer (K3s off: its binary cannot be had here) on 3, 6 and 10 test hosts
// (BENCH_INFRA_HOSTS), with the real engine: the first up (install, keys, wg0 everywhere), a second up that
// changes nothing, and the up that adds one host. Writes .bench/infra-<time>.json with the machine's
// conditions. Needs root (network namespaces).
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { InfraLayer } from "../../components/infra/layer";
import { settingsSchema } from "../../stacks/schema";
import { writeBenchReport } from "@peoples-cloud/testkit";
import { projectStack, tempEngine } from "../helpers/engine";
import { startTestHosts } from "../helpers/testhosts";
import { infraArgs } from "../../program";

async function timeUp(hostCount: number) {
    const lab = startTestHosts("pcbnch", hostCount + 1);
    const engine = await tempEngine();
    try {
        const privateKey = fs.readFileSync(lab.clientKeyPath, "utf8");
        let members = hostCount;
        const stack = await projectStack(engine, `bench${hostCount}`, () => {
            const hosts = lab.hosts.slice(0, members);
            const settings = settingsSchema.parse({
                nodes: {
                    provider: "bare-metal",
                    // An odd number of servers, the rest agents: roles do not matter with K3s off.
                    hosts: hosts.map((h, i) => ({
                        name: h.name,
                        address: h.address,
                        role: i === 0 ? "server" : "agent",
                    })),
                },
                k3s: { enabled: false },
            });
            const infra = new InfraLayer(
                "infra",
                infraArgs({
                    project: "peoples-cloud",
                    stack: `bench${hostCount}`,
                    settings,
                    secrets: { sshPrivateKey: pulumi.secret(privateKey) },
                }),
            );
            return Promise.resolve({ publicKeys: infra.meshPublicKeys });
        });
        const seconds = async (what: () => Promise<unknown>) => {
            const started = performance.now();
            await what();
            return (performance.now() - started) / 1000;
        };
        const firstUp = await seconds(() => stack.up());
        const unchangedUp = await seconds(() => stack.up());
        members = hostCount + 1;
        const addOneUp = await seconds(() => stack.up());
        // A figure for a mesh that is not whole means nothing: the first host must have every other as a peer.
        const mesh = await lab.run(lab.hosts[0], "wg show wg0 peers");
        if (mesh.trim().split("\n").length !== hostCount)
            throw new Error(`wg0 has ${mesh.trim().split("\n").length} peers`);
        return { hosts: hostCount, remoteScripts: 3 * hostCount, firstUp, unchangedUp, addOneUp };
    } finally {
        engine.cleanup();
        lab.stop();
    }
}

async function main() {
    const counts = (process.env.BENCH_INFRA_HOSTS ?? "3,6,10").split(",").map(Number);
    const results = [];
    for (const n of counts) results.push(await timeUp(n));
    const out = writeBenchReport(
        "infra",
        "real engine, test hosts as network namespaces with sshd and wireguard-go on this machine; K3s off",
        { results },
    );
    console.table(
        results.map((r) => ({
            ...r,
            firstUp: r.firstUp.toFixed(1),
            unchangedUp: r.unchangedUp.toFixed(1),
            addOneUp: r.addOneUp.toFixed(1),
        })),
    );
    console.log(`written to ${out}`);
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
