// `peoples-cloud restore <family>`: the cluster back to a K3s etcd snapshot and Vault back to one of its
// backups, in one command, onto the same machines or onto machines reinstalled or replaced since. Everything
// that can fail without changing anything is done first — the machines looked at (a new one has no
// installation mark), the snapshots listed and chosen, Vault's backup downloaded, decrypted and checked,
// Vault's state looked at — and what the restore loses is told before the first change. Then: new machines are
// set up by an up limited to what lives on the machines (WireGuard, K3s, the etcd snapshots' settings); over
// SSH the first server resets etcd from its snapshot, forgets the node passwords of the new machines, and the
// other servers rejoin it (components/backup/scripts/k3s-restore.sh), new agents restart; Vault's data is
// replaced by the snapshot (with the admin token; a new, empty Vault is initialised only to take it in), its
// servers restart and are unsealed with the stack's keys. The caller then runs `up`, so the program converges
// on what was restored (and joins Vault servers that are new).
import * as path from "node:path";
import {
    type BackupStore,
    fetchBackup,
    listBackups,
    listObjects,
    RestoreError,
    storeClient,
} from "@peoples-cloud/vault-backup";
import { etcdFolder } from "../components/backup/etcd";
import { VAULT_NAMESPACE, vaultCliIn } from "../components/vault/manifests";
import { installationMark } from "../lib/node-installation";
import { runOverSsh } from "../lib/remote-script";
import { scriptsIn } from "../lib/scripts";
import { openTunnel, type SshConnection } from "../lib/ssh";
import { submitUnsealKeys, waitUnsealed } from "../lib/vault/seal";
import { runVault, sealStatus, type VaultOperator } from "../lib/vault/operator";
import { repoRoot, UsageError } from "./project";

const backupScript = scriptsIn(path.join(repoRoot, "components", "backup"));
const vaultScript = scriptsIn(path.join(repoRoot, "components", "vault"));

export { RestoreError };

/** A node the restore reaches over SSH. */
export interface Machine {
    name: string;
    connection: SshConnection;
}

/** What a restore reaches and with what, all from the family's stack (see restoreAccess). */
export interface RestoreAccess {
    family: string;
    /** The K3s servers that stay, the cluster's first server first. */
    servers: Machine[];
    /** The K3s agents that stay. */
    agents: Machine[];
    etcd: {
        /** The S3 folder K3s uploads its snapshots to; without one they are on the first server's disk. */
        s3?: BackupStore & { prefix: string };
    };
    /** For tests: settings of the scripts on the servers (a stand-in k3s's PATH, K3s's data folder). */
    serverEnv?: Record<string, string>;
    vault: {
        /** The Vault CLI in each pod (through the first server), the first one the pod the restore goes to. */
        operators: VaultOperator[];
        /** Secret: the admin token, which may replace Vault's data. */
        adminToken: string;
        /** Secret: the unseal keys in the state, and how many unseal. */
        unsealKeys: string[];
        keyThreshold: number;
        /** Where the CronJob puts Vault's backups, and the key they are encrypted with (secret). */
        store: BackupStore;
        /** The store is a service in the cluster (its in-cluster URL): reached through the first server. */
        inCluster: boolean;
        key: Buffer;
        /** Restarts every Vault server and resolves once each answers again (sealed). */
        restart: () => Promise<void>;
    };
}

export interface EtcdSnapshot {
    /** What `--cluster-reset-restore-path` takes: the name in the S3 folder, or the path on the first server. */
    name: string;
    takenAt: Date;
}

export interface VaultBackup {
    key: string;
    takenAt: Date;
}

export interface Snapshots {
    etcd: EtcdSnapshot[];
    vault: VaultBackup[];
}

/** K3s names its snapshots `<name>-<node>-<unix seconds>`, `.zip` when compressed. */
export function etcdSnapshotTime(name: string): Date | undefined {
    const m = /-(\d{9,11})(?:\.zip)?$/.exec(name);
    return m ? new Date(Number(m[1]) * 1000) : undefined;
}

function etcdSnapshots(names: string[]): EtcdSnapshot[] {
    return names
        .flatMap((name) => {
            const takenAt = etcdSnapshotTime(name.split("/").pop()!);
            return takenAt ? [{ name, takenAt }] : [];
        })
        .sort((a, b) => a.takenAt.getTime() - b.takenAt.getTime());
}

/** The snapshots there are, oldest first. */
export async function listSnapshots(access: RestoreAccess): Promise<Snapshots> {
    const { s3 } = access.etcd;
    let etcdNames: string[];
    if (s3) {
        const client = storeClient(s3);
        try {
            etcdNames = (await listObjects(client, s3.bucket, s3.prefix))
                .map(({ key }) => key.slice(s3.prefix.length))
                .filter((name) => name && !name.includes("/"));
        } finally {
            client.destroy();
        }
    } else {
        const first = access.servers[0];
        const listed = await runOverSsh({
            node: first.name,
            step: "list the etcd snapshots",
            connection: first.connection,
            script: backupScript("etcd-snapshot-files.sh"),
            env: access.serverEnv ?? {},
            stdin: "",
        });
        etcdNames = listed.split("\n").filter(Boolean);
    }
    const vault = (await listBackups(access.vault.store)).map(({ key, takenAt }) => ({ key, takenAt }));
    return { etcd: etcdSnapshots(etcdNames), vault };
}

/** The nodes that have no installation mark: new machines, or reinstalled since the last up. */
export async function newMachines(access: RestoreAccess): Promise<string[]> {
    const all = [...access.servers, ...access.agents];
    const marks = await Promise.all(all.map((m) => installationMark(m)));
    return all.filter((_, i) => marks[i] === undefined).map((m) => m.name);
}

/**
 * Refuses a restore onto a new first server when the backups were on the lost machines: only a backup target
 * outside the cluster outlives them.
 */
export function refuseLostBackups(access: RestoreAccess, fresh: string[]): void {
    const first = access.servers[0].name;
    if (!fresh.includes(first)) return;
    const lost = [
        ...(access.etcd.s3 ? [] : ["the etcd snapshots were on the servers' own disks"]),
        ...(access.vault.inCluster ? ["Vault's backups were in the cluster's own storage"] : []),
    ];
    if (lost.length === 0) return;
    throw new UsageError(
        `${first}, the cluster's first server, is a new machine (it has no installation mark), and ` +
            `${lost.join(" and ")}: they went with the old machines. Only backups kept outside the cluster ` +
            "(the backup.target setting) survive that; nothing was changed.",
    );
}

export type Selection = { latest: true } | { at: Date };

/** For each of etcd and Vault the newest snapshot, or the newest taken at or before `at`. */
export function chooseSnapshots(all: Snapshots, selection: Selection): { etcd: EtcdSnapshot; vault: VaultBackup } {
    const until = "at" in selection ? selection.at.getTime() : Infinity;
    const newest = <T extends { takenAt: Date }>(list: T[]) => list.filter((s) => s.takenAt.getTime() <= until).at(-1);
    const etcd = newest(all.etcd);
    const vault = newest(all.vault);
    const when = "at" in selection ? ` taken at or before ${selection.at.toISOString()}` : "";
    if (!etcd) throw new UsageError(`there is no etcd snapshot${when}\n${describeSnapshots(all)}`);
    if (!vault) throw new UsageError(`there is no Vault backup${when}\n${describeSnapshots(all)}`);
    return { etcd, vault };
}

export function describeSnapshots(all: Snapshots): string {
    const lines = ["etcd snapshots (the cluster):"];
    for (const s of all.etcd) lines.push(`  ${s.takenAt.toISOString()}  ${s.name}`);
    if (all.etcd.length === 0) lines.push("  none");
    lines.push("Vault backups:");
    for (const b of all.vault) lines.push(`  ${b.takenAt.toISOString()}  ${b.key}`);
    if (all.vault.length === 0) lines.push("  none");
    return lines.join("\n");
}

export interface RestorePlan {
    /** Nodes on new machines: set up (prepareMachines) before the reset. */
    newMachines: string[];
    etcd: EtcdSnapshot;
    vault: VaultBackup & { raftIndex: number };
    /** What is lost, in words, one line each. */
    lost: string[];
    /** The checked snapshot, ready to go into Vault. */
    snapshot: Buffer;
}

/**
 * Everything before the first change: Vault's backup downloaded, decrypted and checked; Vault looked at — a
 * running Vault is replaced only with `overwriteVault`.
 */
export async function prepareRestore(
    access: RestoreAccess,
    chosen: { etcd: EtcdSnapshot; vault: VaultBackup },
    options: { overwriteVault: boolean; newMachines: string[] },
): Promise<RestorePlan> {
    const fetched = await fetchBackup(access.vault.store, access.vault.key, chosen.vault.key).catch((err: Error) => {
        throw new RestoreError(`the Vault backup ${chosen.vault.key} cannot be used: ${err.message}`);
    });
    const first = access.vault.operators[0];
    // On a new first server there is no cluster yet, and no Vault to look at.
    const status = options.newMachines.includes(access.servers[0].name)
        ? { initialized: false, sealed: true }
        : await sealStatus(first);
    if (status.initialized && !status.sealed && !options.overwriteVault) {
        throw new UsageError(
            `Vault is running (${first.name} is unsealed): restoring replaces all its data with the backup of ` +
                `${fetched.takenAt.toISOString()}. Add --overwrite-vault to do so; nothing was changed.`,
        );
    }
    const fresh = options.newMachines;
    return {
        newMachines: fresh,
        etcd: chosen.etcd,
        vault: { key: fetched.backup, takenAt: fetched.takenAt, raftIndex: fetched.info.index },
        lost: [
            `changes to the cluster (Kubernetes objects) after ${chosen.etcd.takenAt.toISOString()}`,
            `writes to Vault after ${fetched.takenAt.toISOString()} (raft index ${fetched.info.index}): secrets, ` +
                "and keys of objects stored since then",
            ...(fresh.length
                ? [
                      `what the old disks of ${fresh.join(", ")} held (new machines): the cluster's own storage ` +
                          "there — files kept in the family's cloud come back only from a copy kept outside it",
                  ]
                : []),
        ],
        snapshot: fetched.snapshot,
    };
}

/**
 * The restore itself; `say` is told each step, `prepareMachines` sets up new machines (an up limited to
 * MACHINE_RESOURCES). A failure names the server and the step.
 */
export async function runRestore(
    access: RestoreAccess,
    plan: RestorePlan,
    say: (line: string) => void,
    prepareMachines: () => Promise<unknown>,
) {
    const [firstServer, ...others] = access.servers;
    const env = access.serverEnv ?? {};
    const k3sRestore = backupScript("k3s-restore.sh");
    const fresh = plan.newMachines;
    if (fresh.length) {
        say(`${fresh.join(", ")}: new machines; setting up WireGuard and K3s on them first …`);
        await prepareMachines();
    }
    say(`resetting etcd on ${firstServer.name} to ${plan.etcd.name} …`);
    await runOverSsh({
        node: firstServer.name,
        step: "restore etcd (first server)",
        connection: firstServer.connection,
        script: k3sRestore,
        env: {
            ...env,
            K3S_RESTORE_ROLE: "first",
            K3S_SNAPSHOT: plan.etcd.name,
            // The snapshot holds the old machines' node passwords: new ones could not join under their names.
            K3S_FORGET_NODES: fresh.filter((name) => name !== firstServer.name).join(" "),
        },
        stdin: "",
    });
    // The other servers; and agents on new machines, which joined the cluster the reset replaced and fetch
    // their certificates again.
    const rejoining = [
        ...others.map((node) => ({ node, role: "other", step: "restore etcd (rejoin)" })),
        ...access.agents
            .filter((a) => fresh.includes(a.name))
            .map((node) => ({ node, role: "agent", step: "restore etcd (agent)" })),
    ];
    for (const { node, role, step } of rejoining) {
        say(`${node.name} rejoins the restored cluster …`);
        await runOverSsh({
            node: node.name,
            step,
            connection: node.connection,
            script: k3sRestore,
            env: { ...env, K3S_RESTORE_ROLE: role },
            stdin: "",
        });
    }

    const { vault } = access;
    const [first] = vault.operators;
    const initialised = async () => {
        const statuses = await Promise.all(vault.operators.map((o) => sealStatus(o)));
        return vault.operators.filter((_, i) => statuses[i].initialized);
    };
    // Every server gets its keys before any is waited for: one alone has no quorum to elect a leader. Servers
    // that are new (not initialised) are left to the next `up`, which joins them to the restored one.
    const unseal = async (operators: VaultOperator[], keys: string[], threshold: number) => {
        for (const o of operators) await submitUnsealKeys(o, keys, threshold);
        for (const o of operators) await waitUnsealed(o, threshold);
    };
    let token = vault.adminToken;
    const status = await sealStatus(first);
    if (!status.initialized) {
        // New servers: a Vault of their own, with one throwaway key, only to take the snapshot in.
        say(`Vault on ${first.name} is new: initialising it to take the snapshot …`);
        const init = JSON.parse(
            await runVault(first, "operator init", [
                "operator",
                "init",
                "-key-shares=1",
                "-key-threshold=1",
                "-format=json",
            ]),
        ) as { unseal_keys_b64: string[]; root_token: string };
        await unseal([first], init.unseal_keys_b64, 1);
        token = init.root_token;
    } else if (status.sealed) {
        // A Vault that restarted with its node is sealed: unsealed with the state's keys to take the snapshot.
        await unseal(await initialised(), vault.unsealKeys, vault.keyThreshold);
    }
    say(`replacing Vault's data with ${plan.vault.key} …`);
    await runVault(
        first,
        "operator raft snapshot restore",
        ["operator", "raft", "snapshot", "restore", "-force", "/dev/stdin"],
        { token, stdin: plan.snapshot },
    );
    // A running server keeps the seal of its own initialisation until it restarts (OpenBao 2.4).
    say("restarting Vault …");
    await vault.restart();
    say("unsealing Vault with the keys in the stack …");
    await unseal(await initialised(), vault.unsealKeys, vault.keyThreshold).catch((err: Error) => {
        throw new RestoreError(
            `the snapshot is restored but Vault stays sealed (${err.message}): unseal it with the keys that were ` +
                `current at ${plan.vault.takenAt.toISOString()}`,
        );
    });
}

/** In a cluster: Vault's pods deleted (the StatefulSet starts them again), then each answers `vault status`. */
export function restartVaultPods(
    first: { name: string; connection: SshConnection },
    namespace: string,
    pods: string[],
) {
    const env = { VAULT_NAMESPACE: namespace, VAULT_PODS: pods.join(" ") };
    const on = { node: first.name, connection: first.connection, env, stdin: "" };
    return async () => {
        await runOverSsh({ ...on, step: "restart Vault", script: backupScript("vault-restart.sh") });
        await runOverSsh({ ...on, step: "wait for Vault to answer", script: vaultScript("vault-answers.sh") });
    };
}

/** The stack's outputs a restore reads (secret ones included: the caller decrypted them). */
export interface RestoreOutputs {
    serverAccess?: Machine[];
    agentAccess?: Machine[];
    vault?: { replicas: number };
    vaultAdminToken?: string;
    vaultUnsealKeys?: string[];
    backup?: { vault?: { endpoint: string; bucket: string; region: string; prefix: string; inCluster: boolean } };
    backupKey?: string;
    backupCredentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * What the restore reaches, from the family's stack: its outputs and its settings (the unseal threshold, the
 * backup target, whose folder holds the etcd snapshots; without one they are on the first server's disk).
 */
export function restoreAccess(
    family: string,
    outputs: RestoreOutputs,
    settings: {
        vault: { keyThreshold: number };
        backup: { target?: { endpoint: string; bucket: string; region: string } };
        /** Bare-metal hosts: where each is now (a machine replaced may have a new address). */
        nodes?: { provider: string; hosts?: readonly { name: string; address: string; user: string; port: number }[] };
    },
): RestoreAccess {
    const { vault, vaultAdminToken, vaultUnsealKeys, backupKey, backupCredentials } = outputs;
    // The outputs are those of the last up; a host's address in the stack file may be newer.
    const addresses = new Map(
        (settings.nodes?.hosts ?? []).map((h) => [h.name, { host: h.address, user: h.user, port: h.port }]),
    );
    const reach = (m: Machine): Machine => ({
        name: m.name,
        connection: { ...m.connection, ...addresses.get(m.name) },
    });
    const servers = outputs.serverAccess?.map(reach);
    if (!servers?.length || !vault || !vaultAdminToken || !vaultUnsealKeys) {
        throw new UsageError(
            `the family '${family}' has no cluster with Vault in its stack: there is nothing to restore`,
        );
    }
    const vaultBackups = outputs.backup?.vault;
    if (!vaultBackups || !backupKey || !backupCredentials) {
        throw new UsageError(
            `the family '${family}' has no Vault backups in its stack: run peoples-cloud up ${family} with this ` +
                "version of the tool first (it sets the backups up)",
        );
    }
    const { target } = settings.backup;
    const first = servers[0];
    const pods = Array.from({ length: vault.replicas }, (_, i) => `vault-${i}`);
    const { inCluster, ...location } = vaultBackups;
    return {
        family,
        servers,
        agents: (outputs.agentAccess ?? []).map(reach),
        etcd: target
            ? {
                  s3: {
                      ...target,
                      prefix: `${etcdFolder(family)}/`,
                      credentials: backupCredentials,
                  },
              }
            : {},
        vault: {
            operators: pods.map((pod) => ({ name: pod, command: vaultCliIn(pod), ssh: first.connection })),
            adminToken: vaultAdminToken,
            unsealKeys: vaultUnsealKeys,
            keyThreshold: settings.vault.keyThreshold,
            store: { ...location, credentials: backupCredentials },
            inCluster,
            key: Buffer.from(backupKey, "base64"),
            restart: restartVaultPods(first, VAULT_NAMESPACE, pods),
        },
    };
}

/**
 * The access with Vault's backups reachable from here: when they are in the cluster, through a tunnel from
 * the first server to their S3 gateway's service address. `close` ends the tunnel.
 */
export async function reachBackups(access: RestoreAccess): Promise<{ access: RestoreAccess; close: () => void }> {
    if (!access.vault.inCluster) return { access, close: () => undefined };
    const url = new URL(access.vault.store.endpoint);
    const [service, namespace] = url.hostname.split(".");
    const first = access.servers[0];
    const address = (
        await runOverSsh({
            node: first.name,
            step: "find the backups' S3 gateway",
            connection: first.connection,
            script: backupScript("service-address.sh"),
            env: { ...access.serverEnv, SERVICE: service, SERVICE_NAMESPACE: namespace },
            stdin: "",
        })
    ).trim();
    const tunnel = await openTunnel(first.connection, address, Number(url.port || 80));
    const store = { ...access.vault.store, endpoint: `http://127.0.0.1:${tunnel.port}` };
    return { access: { ...access, vault: { ...access.vault, store, inCluster: false } }, close: () => tunnel.close() };
}
