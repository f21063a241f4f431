// Time of `pulumi up` of the infra layer (K3s off: its binary cannot be had here) on 3, 6 and 10 test hosts
// (BENCH_INFRA_HOSTS), with the real engine: the first up (install, keys, wg0 everywhere), a second up that
// changes nothing, and the up that adds one host. Writes .bench/infra-<time>.json with the machine's
// conditions. Needs root (network namespaces).
import { writeBenchReport } from "@peoples-cloud/testkit";
import { projectStack, tempEngine } from "../helpers/engine";
import { testHostsInfra } from "../helpers/infra";
import { startTestHosts } from "../helpers/testhosts";

async function timeUp(hostCount: number) {
    const lab = startTestHosts("pcbnch", hostCount + 1);
    const engine = await tempEngine();
    try {
        let members = hostCount;
        const stack = await projectStack(engine, `bench${hostCount}`, () => {
            const infra = testHostsInfra(`bench${hostCount}`, lab, lab.hosts.slice(0, members));
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
