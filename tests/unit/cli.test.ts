// The family tool's own logic without the engine: flags to settings, a device's key and config, the progress
// display. The engine, test hosts and a joining laptop are in tests/integration/family-cli.test.ts.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { deviceConfigFrom, ensureDeviceKey, phoneSteps, publicKeyOf } from "../../cli/devices";
import { parseHost, settingsFromFlags } from "../../cli/new";
import { Progress } from "../../cli/progress";
import { checkKitFile, kitHolds } from "../../cli/recovery-kit";
import { chooseSnapshots, etcdSnapshotTime, restoreAccess } from "../../cli/restore";
import { describeStatus } from "../../cli/status";
import { validate, withSettings } from "../../cli/stack-file";

describe("the family tool", () => {
    describe("new's flags", () => {
        it("reads a --host with its options, leaving the values for the schema to judge", () => {
            assert.deepEqual(parseHost("node-1=192.0.2.1"), { name: "node-1", address: "192.0.2.1" });
            assert.deepEqual(parseHost("pi=pi.home.arpa,role=agent,user=pi,port=2222"), {
                name: "pi",
                address: "pi.home.arpa",
                role: "agent",
                user: "pi",
                port: 2222,
            });
            assert.throws(() => parseHost("pi"), /has no address/);
            assert.throws(() => parseHost("pi=192.0.2.1,size=big"), /'size=big' is not one of role=…, user=…, port=…/);
        });

        it("makes settings the one schema accepts, or reports its problems by key", () => {
            const hetzner = settingsFromFlags({
                hetzner: true,
                location: "hel1",
                servers: "3",
                adminCidr: ["192.0.2.0/24"],
            });
            assert.deepEqual(hetzner.nodes, { provider: "hetzner", locations: ["hel1"], servers: { count: 3 } });
            assert.equal(validate(withSettings({}, hetzner), ["hcloud:token"]).ok, true);
            const noCidr = validate(withSettings({}, settingsFromFlags({ hetzner: true })), ["hcloud:token"]);
            assert.deepEqual(noCidr.ok ? [] : noCidr.problems.map((p) => p.split(":").slice(0, 2).join(":")), [
                "peoples-cloud:adminCidrs",
            ]);
            assert.throws(() => settingsFromFlags({}), /either --hetzner or one --host/);
            assert.throws(() => settingsFromFlags({ host: ["a=192.0.2.1"], location: "fsn1" }), /are for --hetzner/);
        });
    });

    describe("a device's key", () => {
        let dir: string;
        beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-device-"))));
        afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

        it("is made 0600 on the device, gives the public key wg would, and is never overwritten", () => {
            const file = path.join(dir, "wg", "pc-smith.key");
            const made = ensureDeviceKey(file);
            assert.equal(made.made, true);
            assert.equal((fs.statSync(file).mode & 0o777).toString(8), "600");
            const privateKey = fs.readFileSync(file, "utf8").trim();
            const wg = execFileSync("wg", ["pubkey"], { input: privateKey, encoding: "utf8" }).trim();
            assert.equal(made.publicKey, wg);
            assert.equal(publicKeyOf(privateKey), wg);
            assert.deepEqual(ensureDeviceKey(file), { publicKey: wg, made: false });
            assert.equal(fs.readFileSync(file, "utf8").trim(), privateKey);
            fs.writeFileSync(file, "something else\n");
            assert.throws(() => ensureDeviceKey(file), /is not a WireGuard private key; move it away first/);
        });

        it("is in no config: the wg-quick file reads it from the device's key file", () => {
            const outputs = {
                nodes: [
                    { name: "node-1", meshAddress: "10.99.0.5", publicAddress: "203.0.113.5" },
                    { name: "node-2", meshAddress: "10.99.0.9", publicAddress: "203.0.113.9" },
                ],
                meshCidr: "10.99.0.0/16",
                meshPort: 51820,
                meshPublicKeys: {
                    "node-1": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                    "node-2": "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=",
                },
                devices: [
                    {
                        name: "laptop",
                        owner: "ana",
                        publicKey: "k1Xn1u9n4X8yQ9r5dQqU7l6oM3c2b1a0ZzYyXxWwVvE=",
                        meshAddress: "10.99.3.3",
                    },
                ],
            };
            assert.equal(deviceConfigFrom(outputs, "phone", "/k"), undefined);
            const config = deviceConfigFrom(outputs, "laptop", "/etc/wireguard/pc-smith.key")!;
            assert.equal(
                config.wgQuick,
                [
                    "[Interface]",
                    "Address = 10.99.3.3/16",
                    "PostUp = wg set %i private-key /etc/wireguard/pc-smith.key",
                    "",
                    "# node-1",
                    "[Peer]",
                    "PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                    "Endpoint = 203.0.113.5:51820",
                    "AllowedIPs = 10.99.0.5/32",
                    "PersistentKeepalive = 25",
                    "",
                    "# node-2",
                    "[Peer]",
                    "PublicKey = HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=",
                    "Endpoint = 203.0.113.9:51820",
                    "AllowedIPs = 10.99.0.9/32",
                    "PersistentKeepalive = 25",
                    "",
                ].join("\n"),
            );
            assert.doesNotMatch(config.wgQuick, /PrivateKey/);
            const steps = phoneSteps("smith", config);
            assert.match(steps, /Addresses: 10\.99\.3\.3\/16/);
            assert.match(
                steps,
                /Add peer \(node-2\): public key HIgo9xNz.*\n\s+endpoint 203\.0\.113\.9:51820, allowed IPs 10\.99\.0\.9\/32/,
            );
        });
    });

    it("describes a family's status: nodes and roles, the K3s API, Vault, storage, backups, devices", () => {
        const text = describeStatus({
            family: "smith",
            up: true,
            nodes: [
                { name: "node-1", role: "server", meshAddress: "10.99.1.1", publicAddress: "192.0.2.11" },
                { name: "node-2", role: "agent", meshAddress: "10.99.1.2", publicAddress: "192.0.2.12" },
            ],
            meshCidr: "10.99.0.0/16",
            kubernetesApi: "https://10.99.1.1:6443",
            vault: { address: "https://vault.vault.svc:8200", sealed: [false, true, false] },
            storage: {
                backend: "seaweedfs",
                s3Endpoint: "https://s3.example.org",
                kvEndpoint: "https://kv.example.org",
            },
            etcdSnapshots: "s3://b/smith/etcd at https://backup.example.org",
            vaultBackups: "s3://b/smith/vault/ at https://backup.example.org",
            devices: [
                { name: "laptop", owner: "ben", meshAddress: "10.99.2.2", inMesh: true },
                { name: "phone", owner: "ana", inMesh: false },
            ],
        });
        assert.equal(
            text,
            [
                "The family 'smith', as of its last up:",
                "  nodes (mesh 10.99.0.0/16):",
                "    node-1  server  mesh 10.99.1.1  reached at 192.0.2.11",
                "    node-2  agent  mesh 10.99.1.2  reached at 192.0.2.12",
                "  Kubernetes API: https://10.99.1.1:6443",
                "  Vault: https://vault.vault.svc:8200, 1 of 3 sealed",
                "  storage (seaweedfs): S3 https://s3.example.org, documents https://kv.example.org",
                "  etcd snapshots: s3://b/smith/etcd at https://backup.example.org",
                "  Vault backups: s3://b/smith/vault/ at https://backup.example.org",
                "  devices:",
                "    laptop (ben)  in the mesh at 10.99.2.2",
                "    phone (ana)  added; in the mesh after the next up",
            ].join("\n"),
        );
        assert.match(
            describeStatus({ family: "smith", up: false, nodes: [], devices: [] }),
            /not brought up yet: run peoples-cloud up smith/,
        );
    });

    describe("progress", () => {
        const urn = (name: string) => `urn:pulumi:smith::peoples-cloud::peoples-cloud:infra:RemoteScript::${name}`;
        const event = (e: Partial<EngineEvent>) => ({ sequence: 0, timestamp: 0, ...e });

        it("shows each step as it starts and ends, errors and warnings, and never a debug diagnostic", () => {
            const lines: string[] = [];
            const progress = new Progress(false, (l) => lines.push(l));
            const metadata = {
                op: "create",
                urn: urn("infra-mesh-node-1-key"),
                type: "peoples-cloud:infra:RemoteScript",
            };
            progress.onEvent(event({ resourcePreEvent: { metadata } as never }));
            progress.onEvent(
                event({
                    diagnosticEvent: {
                        severity: "debug",
                        message: "RegisterResource RPC finished: secret-value",
                    } as never,
                }),
            );
            progress.onEvent(event({ resOutputsEvent: { metadata } as never }));
            progress.onEvent(
                event({
                    diagnosticEvent: {
                        urn: urn("infra-mesh-node-2-wg0"),
                        severity: "error",
                        message: "apply wg0 on node-2 failed (exit 1)\n",
                    } as never,
                }),
            );
            progress.stop();
            assert.equal(lines.length, 3, lines.join("\n"));
            assert.match(lines[0], /^ {2}creating infra-mesh-node-1-key …$/);
            assert.match(lines[1], /^ {2}✓ created infra-mesh-node-1-key in \d+\.\d s$/);
            assert.equal(lines[2], "  error: infra-mesh-node-2-wg0: apply wg0 on node-2 failed (exit 1)");
            assert.deepEqual(progress.errors, ["infra-mesh-node-2-wg0: apply wg0 on node-2 failed (exit 1)"]);
        });

        it("names what is still running when the engine has been quiet", async () => {
            const lines: string[] = [];
            const progress = new Progress(false, (l) => lines.push(l), 50);
            const metadata = {
                op: "create",
                urn: urn("infra-k3s-node-1-install"),
                type: "peoples-cloud:infra:RemoteScript",
            };
            progress.onEvent(event({ resourcePreEvent: { metadata } as never }));
            await new Promise((r) => setTimeout(r, 200));
            progress.stop();
            assert.match(lines.at(-1)!, /^ {2}… still working on infra-k3s-node-1-install \(\d+ s\)$/);
        });
    });
    describe("restore", () => {
        const outputs = {
            serverAccess: [
                { name: "node-1", connection: { host: "192.0.2.1", user: "root", privateKey: "k" } },
                { name: "node-2", connection: { host: "192.0.2.2", user: "root", privateKey: "k" } },
            ],
            vault: { replicas: 3 },
            vaultAdminToken: "admin",
            vaultUnsealKeys: ["a", "b", "c"],
            backup: {
                vault: {
                    endpoint: "https://s3.example",
                    bucket: "b",
                    region: "eu",
                    prefix: "vault/",
                    inCluster: false,
                },
            },
            backupKey: Buffer.alloc(32, 7).toString("base64"),
            backupCredentials: { accessKeyId: "id", secretAccessKey: "secret" },
        };
        const settings = {
            vault: { keyThreshold: 2 },
            backup: { target: { endpoint: "https://s3.example", bucket: "b", region: "eu" } },
        };
        const { backupCredentials: credentials } = outputs;

        it("reaches the servers, Vault's pods through the first server, and the backups from the stack", () => {
            const access = restoreAccess("smith", outputs, settings);
            assert.deepEqual(
                access.servers.map((s) => s.name),
                ["node-1", "node-2"],
            );
            assert.equal(access.etcd.s3?.prefix, "smith/etcd/");
            assert.deepEqual(access.etcd.s3?.credentials, credentials);
            assert.deepEqual(
                access.vault.operators.map((o) => [o.name, o.command.slice(0, 8).join(" "), o.ssh?.host]),
                ["vault-0", "vault-1", "vault-2"].map((pod) => [
                    pod,
                    `k3s kubectl exec -i -n vault ${pod} --`,
                    "192.0.2.1",
                ]),
            );
            const { inCluster, ...location } = outputs.backup.vault;
            assert.deepEqual([access.vault.store, access.vault.inCluster], [{ ...location, credentials }, inCluster]);
            assert.deepEqual(access.vault.key, Buffer.alloc(32, 7));
            assert.equal(access.vault.keyThreshold, 2);
        });

        it("reaches a bare-metal host where the stack file has it now, and the agents too", () => {
            const agent = { name: "node-3", connection: { host: "192.0.2.3", user: "root", privateKey: "k" } };
            const moved = { name: "node-2", address: "198.51.100.2", user: "admin", port: 2222 };
            const access = restoreAccess(
                "smith",
                { ...outputs, agentAccess: [agent] },
                { ...settings, nodes: { provider: "bare-metal", hosts: [moved] } },
            );
            assert.deepEqual(access.servers[1].connection, {
                host: "198.51.100.2",
                user: "admin",
                port: 2222,
                privateKey: "k",
            });
            assert.deepEqual(access.servers[0].connection, outputs.serverAccess[0].connection);
            assert.deepEqual(access.agents, [agent]);
            assert.equal(access.vault.operators[0].ssh?.host, "192.0.2.1");
        });

        it("refuses a stack without a cluster or without backups", () => {
            assert.throws(
                () => restoreAccess("smith", { ...outputs, serverAccess: undefined }, settings),
                /has no cluster with Vault in its stack/,
            );
            assert.throws(
                () => restoreAccess("smith", { ...outputs, backupKey: undefined }, settings),
                /has no Vault backups in its stack: run peoples-cloud up smith/,
            );
        });

        it("without a backup target: the etcd snapshots on the first server, Vault's backups in the cluster", () => {
            const inCluster = {
                vault: { ...outputs.backup.vault, endpoint: "http://seaweedfs-s3.storage.svc:8333", inCluster: true },
            };
            const access = restoreAccess("smith", { ...outputs, backup: inCluster }, { ...settings, backup: {} });
            assert.deepEqual(access.etcd, {});
            assert.equal(access.vault.inCluster, true);
            assert.equal(access.vault.store.endpoint, "http://seaweedfs-s3.storage.svc:8333");
        });

        it("reads K3s's snapshot times and chooses the newest of each at or before a time", () => {
            assert.deepEqual(etcdSnapshotTime("etcd-snapshot-node-1-1765021600.zip"), new Date(1765021600_000));
            assert.deepEqual(etcdSnapshotTime("on-demand-node-1-1765021600"), new Date(1765021600_000));
            assert.equal(etcdSnapshotTime("etcd-snapshot-node-1.zip"), undefined);
            const at = (s: number) => new Date(s * 1000);
            const all = {
                etcd: [1000, 2000, 3000].map((t) => ({ name: `e${t}`, takenAt: at(t) })),
                vault: [1500, 2500].map((t) => ({ key: `v${t}`, takenAt: at(t) })),
            };
            const names = (c: ReturnType<typeof chooseSnapshots>) => [c.etcd.name, c.vault.key];
            assert.deepEqual(names(chooseSnapshots(all, { latest: true })), ["e3000", "v2500"]);
            assert.deepEqual(names(chooseSnapshots(all, { at: at(2600) })), ["e2000", "v2500"]);
            assert.deepEqual(names(chooseSnapshots(all, { at: at(2500) })), ["e2000", "v2500"], "at or before");
            assert.throws(() => chooseSnapshots(all, { at: at(1200) }), /there is no Vault backup taken at or before/);
        });
    });

    describe("recovery kit", () => {
        it("refuses a missing --out, an existing file and a missing folder", () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-kit-"));
            try {
                assert.throws(() => checkKitFile(undefined), /needs --out <file>/);
                fs.writeFileSync(path.join(dir, "old.json"), "keep me");
                assert.throws(() => checkKitFile(path.join(dir, "old.json")), /exists: a kit never overwrites a file/);
                assert.throws(() => checkKitFile(path.join(dir, "no", "kit.json")), /folder .* does not exist/);
                assert.equal(checkKitFile(path.join(dir, "kit.json")), path.join(dir, "kit.json"));
            } finally {
                fs.rmSync(dir, { recursive: true });
            }
        });

        it("says what the state holds that a restore needs", () => {
            assert.deepEqual(kitHolds({ nodes: [] }), [
                "the stack's settings and secrets (a backup bucket's credentials, a Hetzner token)",
            ]);
            const all = kitHolds({ serverAccess: [], vaultUnsealKeys: [], backupKey: "", members: {} });
            assert.equal(all.length, 6);
            assert.match(all.join("; "), /K3s token.*unseal keys.*key of Vault's backups.*ETag and name keys/);
        });
    });
});
