// The Hetzner provider's graph under mocks: what it creates for 1, 3 and 5 servers, what its firewalls open,
// where addresses come from, and which outputs are secret.
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { HetznerNodes, spreadGroupSize, type HetznerSettings } from "../../components/infra/hetzner";
import { meshAddressOf } from "../../lib/mesh-addresses";
import { clusterPorts, firewallNoClusterPortsToInternet, firewallSshNotOpenToWorld } from "../../policy/rules/firewall";
import { controlPlaneSpread, hetznerServersLabelled } from "../../policy/rules/hetzner";
import { settingsSchema } from "../../stacks/schema";
import { resourceViolations, stackViolations } from "../helpers/policy";
import { settled, unwrap, useMocks, type RecordedResource } from "../helpers/mocks";

const hetzner = (servers: number, agents: number, locations: string[]) =>
    settingsSchema.parse({
        nodes: { provider: "hetzner", locations, servers: { count: servers }, agents: { count: agents } },
        adminCidrs: ["198.51.100.0/24"],
    }).nodes as HetznerSettings;

const meshCidr = "10.99.0.0/16";
const adminCidrs = ["198.51.100.0/24"];

/** Registers HetznerNodes under mocks that give servers an address and generated keys their halves. */
async function build(settings: HetznerSettings, key?: { privateKey?: string; publicKey?: string }) {
    const recorded = await useMocks("prod", { values: {}, secretKeys: new Set<string>() }, (r) => {
        if (r.type === "hcloud:index/server:Server") return { ipv4Address: publicAddressOf(r.name) };
        if (r.type === "tls:index/privateKey:PrivateKey") {
            return { privateKeyOpenssh: "generated-private-key", publicKeyOpenssh: "ssh-ed25519 AAAAgenerated" };
        }
        return {};
    });
    const component = new HetznerNodes("infra-hetzner", {
        settings,
        meshCidr,
        wireguardPort: 51820,
        adminCidrs,
        sshPrivateKey: key?.privateKey === undefined ? undefined : pulumi.secret(key.privateKey),
        sshPublicKey: key?.publicKey,
    });
    await settled();
    const connections = await Promise.all(component.nodes.map((n) => unwrap(n.connection)));
    const of = (type: string) => recorded.filter((r) => r.type === `hcloud:index/${type}`);
    return { component, connections, recorded, of };
}

/** The address the mocks give a server: server-N → .N, agent-N → .(100+N). */
function publicAddressOf(name: string): string {
    const [, role, n] = /(server|agent)-(\d+)$/.exec(name)!;
    return `203.0.113.${Number(n) + (role === "agent" ? 100 : 0)}`;
}

const idOf = (recorded: RecordedResource[], r: RecordedResource) => recorded.indexOf(r) + 1;

describe("hetzner nodes", () => {
    for (const [serverCount, agentCount, locations] of [
        [1, 0, ["fsn1"]],
        [3, 2, ["fsn1", "nbg1"]],
        [5, 12, ["fsn1", "nbg1", "hel1"]],
    ] as const) {
        describe(`${serverCount} servers and ${agentCount} agents over ${locations.join(", ")}`, () => {
            let built: Awaited<ReturnType<typeof build>>;
            before(async () => {
                built = await build(hetzner(serverCount, agentCount, [...locations]));
            });

            it("makes one key, one network with a subnet, two firewalls, spread groups and a server per node", () => {
                const { of, recorded } = built;
                assert.equal(of("sshKey:SshKey").length, 1);
                assert.equal(of("network:Network").length, 1);
                assert.equal(of("networkSubnet:NetworkSubnet").length, 1);
                assert.equal(of("firewall:Firewall").length, 2);
                assert.equal(of("placementGroup:PlacementGroup").length, 1 + Math.ceil(agentCount / spreadGroupSize));
                assert.equal(of("server:Server").length, serverCount + agentCount);
                assert.equal(recorded.filter((r) => r.type === "tls:index/privateKey:PrivateKey").length, 1);
                assert.deepEqual(
                    recorded.filter((r) => r.type.startsWith("invoke:")).map((r) => r.type),
                    [],
                    "a data source would need the Hetzner API during preview",
                );
            });

            it("spreads servers round-robin over the locations, at most 10 to a placement group", () => {
                const { of, recorded } = built;
                const servers = of("server:Server").filter(
                    (s) => (s.inputs.labels as Record<string, string>).role === "server",
                );
                assert.deepEqual(
                    servers.map((s) => s.inputs.location),
                    servers.map((_, i) => locations[i % locations.length]),
                );
                const perGroup = new Map<unknown, number>();
                for (const s of of("server:Server")) {
                    perGroup.set(s.inputs.placementGroupId, (perGroup.get(s.inputs.placementGroupId) ?? 0) + 1);
                }
                const groupIds = of("placementGroup:PlacementGroup").map((g) => idOf(recorded, g));
                assert.ok(
                    [...perGroup.keys()].every((id) => groupIds.includes(id as number)),
                    "unknown group",
                );
                assert.ok(
                    [...perGroup.values()].every((n) => n <= spreadGroupSize),
                    JSON.stringify([...perGroup]),
                );
                assert.ok(of("placementGroup:PlacementGroup").every((g) => g.inputs.type === "spread"));
                assert.deepEqual(
                    stackViolations(controlPlaneSpread, serversAsPolicyResources(of("server:Server")), {
                        minServers: serverCount,
                        minLocations: Math.min(serverCount, locations.length),
                    }),
                    [],
                );
            });

            it("opens WireGuard, SSH from the admins and 80/443 on servers only, never a cluster port", () => {
                const { of, recorded } = built;
                const firewall = (suffix: string) => of("firewall:Firewall").find((f) => f.name.endsWith(suffix))!;
                const [base, ingress] = [firewall("-base"), firewall("-ingress")];
                for (const fw of [base, ingress]) {
                    const r = { type: fw.type, props: fw.inputs };
                    assert.deepEqual(resourceViolations(firewallNoClusterPortsToInternet, r), []);
                    assert.deepEqual(resourceViolations(firewallSshNotOpenToWorld, r), []);
                    for (const rule of fw.inputs.rules as { port?: string; sourceIps: string[] }[]) {
                        if (!rule.port) continue;
                        const [from, to = from] = rule.port.split("-").map(Number);
                        const hit = clusterPorts.filter((p) => p.from <= to && from <= p.to);
                        assert.deepEqual(hit, [], `${rule.port} from ${rule.sourceIps.join(",")}`);
                    }
                }
                const open = (fw: RecordedResource) =>
                    (fw.inputs.rules as { protocol: string; port?: string; sourceIps: string[] }[]).map(
                        (r) => `${r.protocol}/${r.port ?? "-"} from ${r.sourceIps.join(",")}`,
                    );
                assert.deepEqual(open(base), [
                    "udp/51820 from 0.0.0.0/0,::/0",
                    "tcp/22 from 198.51.100.0/24",
                    "icmp/- from 0.0.0.0/0,::/0",
                ]);
                assert.deepEqual(open(ingress), ["tcp/80 from 0.0.0.0/0,::/0", "tcp/443 from 0.0.0.0/0,::/0"]);
                for (const s of of("server:Server")) {
                    const role = (s.inputs.labels as Record<string, string>).role;
                    const want = role === "server" ? [base, ingress] : [base];
                    assert.deepEqual(
                        s.inputs.firewallIds,
                        want.map((fw) => idOf(recorded, fw)),
                        s.name,
                    );
                }
            });

            it("labels every server and attaches it to the network at a fixed private address", () => {
                const { of, recorded } = built;
                const networkId = idOf(recorded, of("network:Network")[0]);
                const ips = new Set<string>();
                for (const s of of("server:Server")) {
                    const r = { type: s.type, props: s.inputs };
                    assert.deepEqual(resourceViolations(hetznerServersLabelled, r), []);
                    const [net] = s.inputs.networks as { networkId: number; ip: string }[];
                    assert.equal(net.networkId, networkId);
                    assert.match(net.ip, /^10\.0\.1\.\d+$/);
                    ips.add(net.ip);
                }
                assert.equal(ips.size, serverCount + agentCount, "private addresses repeat");
            });

            it("gives each node its mesh address and a secret connection to its public address", () => {
                const { component, connections } = built;
                assert.deepEqual(
                    component.nodes.map((n) => n.name),
                    [
                        ...Array.from({ length: serverCount }, (_, i) => `server-${i + 1}`),
                        ...Array.from({ length: agentCount }, (_, i) => `agent-${i + 1}`),
                    ],
                );
                component.nodes.forEach((n, i) => {
                    assert.equal(n.meshAddress, meshAddressOf(n.name, meshCidr));
                    assert.equal(n.ingress, n.role === "server");
                    assert.equal(connections[i].secret, true, n.name);
                    assert.deepEqual(connections[i].value, {
                        host: publicAddressOf(n.name),
                        port: 22,
                        user: "root",
                        privateKey: "generated-private-key",
                    });
                });
            });
        });
    }

    it("moves no node's mesh or private address when agents are added or removed", async () => {
        const addresses = async (agents: number) => {
            const { component, of } = await build(hetzner(3, agents, ["fsn1", "nbg1"]));
            const privateIps = new Map(
                of("server:Server").map((s) => [
                    s.name.replace("infra-hetzner-", ""),
                    (s.inputs.networks as { ip: string }[])[0].ip,
                ]),
            );
            return new Map(component.nodes.map((n) => [n.name, `${n.meshAddress} ${privateIps.get(n.name)}`]));
        };
        const few = await addresses(2);
        const many = await addresses(12);
        assert.equal(new Set(many.values()).size, many.size, "two nodes share an address");
        for (const [name, both] of few) assert.equal(many.get(name), both, name);
        assert.equal(many.size, 15);
    });

    it("uses a configured key pair, keeps the private half secret, and generates none", async () => {
        const { component, recorded, of } = await build(hetzner(1, 1, ["fsn1"]), {
            privateKey: "configured-private-key",
            publicKey: "ssh-ed25519 AAAAconfigured admin",
        });
        assert.equal(recorded.filter((r) => r.type === "tls:index/privateKey:PrivateKey").length, 0);
        assert.equal(of("sshKey:SshKey")[0].inputs.publicKey, "ssh-ed25519 AAAAconfigured admin");
        const key = await unwrap(component.sshPrivateKey);
        assert.deepEqual(key, { value: "configured-private-key", secret: true });
        for (const n of component.nodes) {
            const c = await unwrap(n.connection);
            assert.equal(c.secret, true);
            assert.equal(c.value.privateKey, "configured-private-key");
        }
    });

    it("keeps a generated private key secret", async () => {
        const { component } = await build(hetzner(1, 0, ["fsn1"]));
        assert.deepEqual(await unwrap(component.sshPrivateKey), { value: "generated-private-key", secret: true });
    });

    it("refuses a private key without its public half, naming the key to set", async () => {
        await useMocks("prod", { values: {}, secretKeys: new Set<string>() });
        assert.throws(
            () =>
                new HetznerNodes("x", {
                    settings: hetzner(1, 0, ["fsn1"]),
                    meshCidr,
                    wireguardPort: 51820,
                    adminCidrs,
                    sshPrivateKey: pulumi.secret("configured-private-key"),
                }),
            /peoples-cloud:sshPublicKey is required/,
        );
    });
});

function serversAsPolicyResources(servers: RecordedResource[]) {
    return servers.map((s) => ({ type: s.type, props: s.inputs }));
}
