// The family tool's restore, with real parts wherever they run here: three test hosts reached over SSH as the
// cluster's two servers and an agent (K3s itself is a stand-in that records its calls: it cannot run here),
// two OpenBao raft servers on the hosts' bridge initialised and configured by the program with the real
// engine, the Vault CLI run over SSH as in the pods, and the backups in a real S3 server: Vault's made by the
// backup job's own code, etcd's named as K3s names them. Shown: the snapshots listed and the newest chosen; a running Vault, a corrupted
// backup and a failing etcd reset each refused or stopped with nothing else changed and the host and step named;
// then the restore — the first server reset to the etcd snapshot, the other rejoined with its old data kept,
// Vault's data replaced by the backup's (a secret written after it is gone, one written before it is back) and
// both servers unsealed with the stack's keys — with no secret in anything it printed; and onto new machines
// (no installation mark): set up before the reset, their node passwords forgotten, the new agent restarted,
// Vault's snapshot taken in by a new, empty Vault. A new first server with backups left on the old machines is
// refused.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Stack } from "@pulumi/pulumi/automation";
import {
    CreateBucketCommand,
    DeleteObjectCommand,
    GetObjectCommand,
    PutObjectCommand,
    type S3Client,
} from "@aws-sdk/client-s3";
import { backupVault, type BackupStore, listBackups } from "@peoples-cloud/vault-backup";
import {
    type RaftServer,
    type S3Server,
    s3Client,
    startOpenBaoRaft,
    startS3Backend,
    toolsBinDir,
} from "@peoples-cloud/testkit";
import {
    chooseSnapshots,
    listSnapshots,
    newMachines,
    prepareRestore,
    reachBackups,
    refuseLostBackups,
    type RestoreAccess,
    runRestore,
} from "../../cli/restore";
import { tokenFromStdin } from "../../lib/vault/operator";
import { type Engine, projectStack, tempEngine } from "../helpers/engine";
import { newSshKey } from "../helpers/keys";
import { startTestHosts, type TestHosts } from "../helpers/testhosts";
import { vaultProgram } from "../helpers/vault";

const FAMILY = "restore";

/** The parts of Vault's answers the test reads. */
interface VaultAnswer {
    auth?: { client_token: string };
    data?: { data?: { v?: string } };
}

describe("restore: etcd and Vault back from their snapshots in one command", function () {
    this.timeout(10 * 60_000);
    let lab: TestHosts;
    let engine: Engine;
    let servers: RaftServer[] = [];
    let s3: S3Server;
    let bucket: S3Client;
    let stack: Stack;
    let access: RestoreAccess;
    let adminToken: string;
    let unsealKeys: string[];
    let standins: string;
    /** K3s's snapshot names: one an hour before Vault's backup, one just after it. */
    let etcdNames: [string, string];
    let backupTime: Date;
    const key = randomBytes(32);
    const said: string[] = [];
    const say = (line: string) => said.push(line);

    const vaultCall = async (method: string, route: string, body?: unknown, token = adminToken) => {
        const res = await fetch(`${servers[0].url}/v1/${route}`, {
            method,
            headers: { "X-Vault-Token": token },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, body: (text ? JSON.parse(text) : {}) as VaultAnswer };
    };
    const calls = (host: number) => {
        const file = path.join(lab.hosts[host].home, "etc-rancher-k3s", "calls");
        return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : [];
    };

    before(async () => {
        // Two servers and an agent.
        lab = startTestHosts("pcrst", 3);
        engine = await tempEngine();
        servers = await Promise.all(["vault-0", "vault-1"].map((id) => startOpenBaoRaft(id, lab.bridgeAddress)));
        s3 = await startS3Backend("minio");
        bucket = s3Client(s3.url, s3.accessKeyId, s3.secretAccessKey);
        await bucket.send(new CreateBucketCommand({ Bucket: "family-backups" }));

        const ssh = newSshKey("peoples-cloud-restore-test");
        lab.authorize(ssh.publicKey);
        const connectionOf = (i: number) => ({ host: lab.hosts[i].address, user: "root", privateKey: ssh.privateKey });
        stack = await projectStack(
            engine,
            "restore",
            vaultProgram(servers, {
                ssh: () => pulumi.secret(connectionOf(0)),
                auditFile: path.join(servers[0].dir, "audit.log"),
            }),
        );
        const up = await stack.up();
        adminToken = up.outputs.adminToken.value as string;
        unsealKeys = up.outputs.unsealKeys.value as string[];

        // K3s and systemctl stand-ins, on each host's own /etc/rancher/k3s: they record their calls there.
        standins = fs.mkdtempSync(path.join(lab.dir, "standins-"));
        for (const name of ["k3s", "systemctl"]) {
            fs.writeFileSync(
                path.join(standins, name),
                `#!/usr/bin/env bash\necho "${name} $*" >>/etc/rancher/k3s/calls\n` +
                    `[ "\${STANDIN_FAIL:-}" != "${name} $1" ] || exit 1\n` +
                    // `k3s kubectl get service …`: the service's cluster address.
                    `case "$*" in "kubectl get service "*) echo "\${STANDIN_SERVICE_ADDRESS:-}" ;; esac\n`,
                { mode: 0o755 },
            );
        }
        // Each host as the infra layer leaves it: K3s's data, and the mark of the machine's installation.
        for (const host of lab.hosts) {
            await lab.run(host, "mkdir -p /etc/rancher/k3s/data/server/db/member /var/lib/peoples-cloud");
            await lab.run(host, "echo 1 >/var/lib/peoples-cloud/installation");
        }

        const store: BackupStore = {
            endpoint: s3.url,
            bucket: "family-backups",
            credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        };
        const bao = path.join(toolsBinDir("servers"), "bao");
        access = {
            family: FAMILY,
            servers: lab.hosts.slice(0, 2).map((h, i) => ({ name: h.name, connection: connectionOf(i) })),
            agents: [{ name: lab.hosts[2].name, connection: connectionOf(2) }],
            etcd: { s3: { ...store, prefix: `${FAMILY}/etcd/` } },
            serverEnv: {
                PATH: `${standins}:/usr/sbin:/usr/bin:/sbin:/bin`,
                K3S_DATA_DIR: "/etc/rancher/k3s/data",
                K3S_WAIT_SECONDS: "5",
                STANDIN_SERVICE_ADDRESS: lab.bridgeAddress,
            },
            vault: {
                operators: servers.map((s) => ({
                    name: s.nodeId,
                    command: tokenFromStdin(bao),
                    env: { BAO_ADDR: s.url, VAULT_ADDR: s.url },
                    ssh: connectionOf(0),
                })),
                adminToken,
                unsealKeys,
                keyThreshold: 2,
                store,
                inCluster: false,
                key,
                restart: async () => {
                    for (const s of servers) await s.restart();
                },
            },
        };

        // A secret, then a backup by the job's code (a token of a snapshot-only policy), then a later secret.
        assert.equal((await vaultCall("POST", "secret/data/family/before", { data: { v: "before" } })).status, 200);
        const policy = 'path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}';
        assert.equal((await vaultCall("PUT", "sys/policies/acl/snapshot-only", { policy })).status, 204);
        const made = await vaultCall("POST", "auth/token/create", { policies: ["snapshot-only"], ttl: "10m" });
        const snapshotToken = made.body.auth!.client_token;
        const result = await backupVault({
            vault: { address: servers[0].url, token: snapshotToken },
            store,
            key,
            keep: 5,
        });
        backupTime = new Date(result.takenAt);
        assert.equal((await vaultCall("POST", "secret/data/family/after", { data: { v: "after" } })).status, 200);

        // etcd snapshots as K3s uploads them to its folder (and a metadata folder the listing leaves out).
        const seconds = Math.floor(backupTime.getTime() / 1000);
        etcdNames = [`etcd-snapshot-node-1-${seconds - 3600}.zip`, `etcd-snapshot-node-1-${seconds + 1}.zip`];
        for (const name of [...etcdNames, `.metadata/${etcdNames[1]}`]) {
            await bucket.send(
                new PutObjectCommand({ Bucket: "family-backups", Key: `${FAMILY}/etcd/${name}`, Body: "zip" }),
            );
        }
    });
    after(async () => {
        await Promise.all(servers.map((s) => s.stop()));
        await s3?.stop();
        engine?.cleanup();
        lab?.stop();
    });

    /** The same machines: setting machines up is never asked for. */
    const noNewMachines = () => Promise.reject(new Error("asked to set up machines, though none is new"));

    it("lists the snapshots and chooses the newest, or the newest at or before a time", async () => {
        assert.deepEqual(await newMachines(access), [], "machines with their installation mark taken for new");
        const all = await listSnapshots(access);
        assert.deepEqual(
            all.etcd.map((s) => s.name),
            etcdNames,
        );
        assert.deepEqual(
            all.vault.map((b) => b.takenAt),
            [backupTime],
        );
        assert.equal(chooseSnapshots(all, { latest: true }).etcd.name, etcdNames[1]);
        const before = chooseSnapshots(all, { at: backupTime });
        assert.deepEqual([before.etcd.name, before.vault.takenAt], [etcdNames[0], backupTime]);
        assert.throws(
            () => chooseSnapshots(all, { at: new Date(backupTime.getTime() - 7200_000) }),
            /there is no etcd snapshot taken at or before/,
        );
    });

    it("refuses a running Vault without --overwrite-vault, and a corrupted backup, changing nothing", async () => {
        const chosen = chooseSnapshots(await listSnapshots(access), { latest: true });
        await assert.rejects(
            prepareRestore(access, chosen, { overwriteVault: false, newMachines: [] }),
            /Vault is running \(vault-0 is unsealed\).* Add --overwrite-vault to do so; nothing was changed/,
        );

        // A copy of the good backup with one byte changed, an hour newer: --latest chooses it.
        const [good] = await listBackups(access.vault.store);
        const got = await bucket.send(new GetObjectCommand({ Bucket: "family-backups", Key: good.key }));
        const body = Buffer.from(await got.Body!.transformToByteArray());
        body[body.length - 100] ^= 1;
        const later = new Date(good.takenAt.getTime() + 3600_000).toISOString().replaceAll(":", "-");
        const corrupt = `vault/${later}.snap.enc`;
        await bucket.send(new PutObjectCommand({ Bucket: "family-backups", Key: corrupt, Body: body }));
        try {
            const newest = chooseSnapshots(await listSnapshots(access), { latest: true });
            assert.equal(newest.vault.key, corrupt);
            await assert.rejects(
                prepareRestore(access, newest, { overwriteVault: true, newMachines: [] }),
                new RegExp(`the Vault backup ${corrupt.replace(/[.]/g, "\\.")} cannot be used: `),
            );
        } finally {
            await bucket.send(new DeleteObjectCommand({ Bucket: "family-backups", Key: corrupt }));
        }
        // A new first server: backups kept on the old machines are gone with them.
        assert.throws(
            () => refuseLostBackups({ ...access, etcd: {} }, ["node-1"]),
            /^UsageError: node-1, the cluster's first server, is a new machine \(it has no installation mark\), and the etcd snapshots were on the servers' own disks: they went with the old machines\. Only backups kept outside the cluster \(the backup\.target setting\) survive that; nothing was changed\.$/,
        );
        refuseLostBackups({ ...access, etcd: {} }, ["node-2"]);
        assert.deepEqual([calls(0), calls(1), calls(2)], [[], [], []], "a node was touched");
        assert.equal((await vaultCall("GET", "secret/data/family/after")).status, 200, "Vault was changed");
    });

    it("a failing etcd reset names the server and the step", async () => {
        const chosen = chooseSnapshots(await listSnapshots(access), { latest: true });
        const plan = await prepareRestore(access, chosen, { overwriteVault: true, newMachines: [] });
        const failing = { ...access, serverEnv: { ...access.serverEnv, STANDIN_FAIL: "k3s server" } };
        await assert.rejects(
            runRestore(failing, plan, say, noNewMachines),
            new RegExp(
                `restore etcd \\(first server\\) on node-1 failed \\(exit 1\\): k3s-restore: the cluster reset ` +
                    `from snapshot ${etcdNames[1].replaceAll(".", "\\.")} failed`,
            ),
        );
        assert.equal((await vaultCall("GET", "secret/data/family/after")).status, 200, "Vault was changed");
        for (const host of lab.hosts) await lab.run(host, "rm -f /etc/rancher/k3s/calls");
    });

    it("restores: etcd reset on the first server, the other rejoins, Vault's data replaced and unsealed", async () => {
        said.length = 0;
        const chosen = chooseSnapshots(await listSnapshots(access), { latest: true });
        const plan = await prepareRestore(access, chosen, { overwriteVault: true, newMachines: [] });
        const etcdTime = new Date((Math.floor(backupTime.getTime() / 1000) + 1) * 1000).toISOString();
        assert.equal(plan.lost[0], `changes to the cluster (Kubernetes objects) after ${etcdTime}`);
        assert.match(plan.lost.join("\n"), /writes to Vault after .* \(raft index \d+\)/);
        await runRestore(access, plan, say, noNewMachines);

        assert.deepEqual(calls(2), [], "an agent on the same machine was restarted");
        assert.deepEqual(calls(0), [
            "systemctl stop k3s",
            `k3s server --cluster-reset --cluster-reset-restore-path=${etcdNames[1]}`,
            "systemctl start k3s",
            "k3s kubectl get --raw=/readyz",
        ]);
        assert.deepEqual(calls(1), ["systemctl stop k3s", "systemctl start k3s", "k3s kubectl get --raw=/readyz"]);
        const kept = await lab.run(lab.hosts[1], "ls /etc/rancher/k3s/data/server");
        assert.match(kept, /^db\.before-restore-\d{8}T\d{6}$/m, "the rejoining server's old data was not kept");

        for (const s of servers) {
            const health = await fetch(`${s.url}/v1/sys/health`);
            assert.ok([200, 429].includes(health.status), `${s.nodeId} is not unsealed (${health.status})`);
        }
        assert.equal((await vaultCall("GET", "secret/data/family/before")).body.data?.data?.v, "before");
        assert.equal((await vaultCall("GET", "secret/data/family/after")).status, 404, "a later write survived");
        assert.deepEqual(said, [
            `resetting etcd on node-1 to ${etcdNames[1]} …`,
            "node-2 rejoins the restored cluster …",
            `replacing Vault's data with ${plan.vault.key} …`,
            "restarting Vault …",
            "unsealing Vault with the keys in the stack …",
        ]);
        const printed = said.join("\n");
        for (const secret of [adminToken, ...unsealKeys, key.toString("base64"), s3.secretAccessKey]) {
            assert.ok(!printed.includes(secret), "a secret was printed");
        }
    });
    it("restores onto new machines: set up first, their node passwords forgotten, Vault into a new, empty one", async () => {
        const fresh = await Promise.all(["vault-0", "vault-1"].map((id) => startOpenBaoRaft(id, lab.bridgeAddress)));
        try {
            // What reinstalling the machines leaves of the program's work: no installation mark.
            for (const host of lab.hosts) {
                await lab.run(host, "rm -f /var/lib/peoples-cloud/installation /etc/rancher/k3s/calls");
            }
            const bao = path.join(toolsBinDir("servers"), "bao");
            const onNew: RestoreAccess = {
                ...access,
                vault: {
                    ...access.vault,
                    operators: fresh.map((s, i) => ({
                        ...access.vault.operators[i],
                        env: { BAO_ADDR: s.url, VAULT_ADDR: s.url },
                        command: tokenFromStdin(bao),
                    })),
                    restart: async () => {
                        for (const s of fresh) await s.restart();
                    },
                },
            };
            const found = await newMachines(onNew);
            assert.deepEqual(found, ["node-1", "node-2", "node-3"]);
            refuseLostBackups(onNew, found);
            said.length = 0;
            const chosen = chooseSnapshots(await listSnapshots(onNew), { latest: true });
            const plan = await prepareRestore(onNew, chosen, { overwriteVault: false, newMachines: found });
            assert.match(plan.lost.at(-1)!, /^what the old disks of node-1, node-2, node-3 held \(new machines\)/);
            let touchedBeforeSetUp: string[][] | undefined;
            await runRestore(onNew, plan, say, async () => {
                touchedBeforeSetUp = [calls(0), calls(1), calls(2)];
                // What the up of the machines leaves: each has its mark again.
                for (const host of lab.hosts) await lab.run(host, "echo 2 >/var/lib/peoples-cloud/installation");
            });
            assert.deepEqual(touchedBeforeSetUp, [[], [], []], "a node was touched before the machines were set up");
            const forgotten = calls(0).filter((c) => c.includes("node-password"));
            assert.deepEqual(
                forgotten,
                ["node-2", "node-3"].map(
                    (n) => `k3s kubectl -n kube-system delete secret ${n}.node-password.k3s --ignore-not-found`,
                ),
            );
            assert.deepEqual(calls(2), ["systemctl restart k3s-agent"]);
            assert.deepEqual(said.slice(0, 4), [
                "node-1, node-2, node-3: new machines; setting up WireGuard and K3s on them first …",
                `resetting etcd on node-1 to ${etcdNames[1]} …`,
                "node-2 rejoins the restored cluster …",
                "node-3 rejoins the restored cluster …",
            ]);
            assert.ok(
                said.includes("Vault on vault-0 is new: initialising it to take the snapshot …"),
                said.join("\n"),
            );
            const read = await fetch(`${fresh[0].url}/v1/secret/data/family/before`, {
                headers: { "X-Vault-Token": adminToken },
            });
            assert.equal(read.status, 200, "the stack's admin token does not read the restored secret");
            assert.equal((await fetch(`${fresh[1].url}/v1/sys/health`)).status, 501, "the next up joins vault-1");
            const printed = said.join("\n");
            for (const secret of [adminToken, ...unsealKeys])
                assert.ok(!printed.includes(secret), "a secret was printed");
        } finally {
            await Promise.all(fresh.map((s) => s.stop()));
            for (const host of lab.hosts) await lab.run(host, "echo 1 >/var/lib/peoples-cloud/installation");
        }
    });
    it("reaches backups kept inside the cluster through the first server, and etcd snapshots on its disk", async () => {
        // The cluster's S3 gateway as a service address the first server reaches: the test hosts' bridge, relayed
        // to the S3 server. The etcd snapshots: files in K3s's snapshot folder on the first server.
        const relay = net.createServer((c) => c.pipe(net.connect(Number(new URL(s3.url).port), "127.0.0.1")).pipe(c));
        await new Promise<void>((resolve) => relay.listen(0, lab.bridgeAddress, resolve));
        const relayPort = (relay.address() as net.AddressInfo).port;
        const snapshotDir = "/etc/rancher/k3s/data/server/db/snapshots";
        await lab.run(lab.hosts[0], `mkdir -p ${snapshotDir} && touch ${snapshotDir}/${etcdNames[0]}`);
        const inCluster: RestoreAccess = {
            ...access,
            etcd: {},
            vault: {
                ...access.vault,
                store: { ...access.vault.store, endpoint: `http://seaweedfs-s3.storage.svc:${relayPort}` },
                inCluster: true,
            },
        };
        const reached = await reachBackups(inCluster);
        try {
            assert.match(reached.access.vault.store.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
            const all = await listSnapshots(reached.access);
            assert.deepEqual(
                all.etcd.map((e) => e.name),
                [`${snapshotDir}/${etcdNames[0]}`],
            );
            assert.deepEqual(
                all.vault.map((b) => b.takenAt),
                [backupTime],
            );
            const plan = await prepareRestore(reached.access, chooseSnapshots(all, { latest: true }), {
                overwriteVault: true,
                newMachines: [],
            });
            assert.deepEqual(plan.vault.takenAt, backupTime, "the backup was not fetched through the tunnel");
            assert.ok(
                calls(0).includes("k3s kubectl get service -n storage seaweedfs-s3 -o jsonpath={.spec.clusterIP}"),
            );
        } finally {
            reached.close();
            relay.close();
        }
    });
});
