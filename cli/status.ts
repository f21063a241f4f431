// `peoples-cloud status <family>`: what the family's stack holds, as of its last `up` (the engine's state), and
// the devices its stack file lists. Secret outputs (kubeconfig, Vault's keys, members' keys) are never read out.
import { familySettings } from "./stack-file";
import { projectDir, type WorkspaceOptions } from "./project";
import { selectFamily } from "./workspace";

export interface Status {
    family: string;
    /** False until a first `up` has finished. */
    up: boolean;
    nodes: { name: string; role: string; meshAddress: string; publicAddress: string }[];
    meshCidr?: string;
    kubernetesApi?: string;
    vault?: { address: string; sealed: boolean[] };
    storage?: { backend: string; s3Endpoint: string; kvEndpoint: string };
    /** Where K3s's etcd snapshots go. */
    etcdSnapshots?: string;
    /** Where Vault's encrypted snapshots go. */
    vaultBackups?: string;
    devices: { name: string; owner: string; meshAddress?: string; inMesh: boolean }[];
}

export async function familyStatus(family: string, options: WorkspaceOptions): Promise<Status> {
    const settings = familySettings(projectDir(options), family);
    const stack = await selectFamily(options, family);
    const raw = await stack.outputs();
    const value = <T>(key: string) => (raw[key] && !raw[key].secret ? (raw[key].value as T) : undefined);
    const inMesh = value<{ name: string; meshAddress: string }[]>("devices") ?? [];
    const vault = value<{ address: string; sealed: boolean[] }>("vault");
    const storage = value<{ backend: string; s3Endpoint: string; kvEndpoint: string }>("storage");
    const backup = value<{
        etcdSnapshots: string;
        vault?: { endpoint: string; bucket: string; prefix: string; inCluster: boolean };
    }>("backup");
    const vaultBackups =
        backup?.vault && `s3://${backup.vault.bucket}/${backup.vault.prefix} at ${backup.vault.endpoint}`;
    return {
        family,
        up: raw.nodes !== undefined,
        nodes: value<Status["nodes"]>("nodes") ?? [],
        meshCidr: value("meshCidr"),
        kubernetesApi: value("kubernetesApi"),
        ...(vault ? { vault: { address: vault.address, sealed: vault.sealed } } : {}),
        ...(storage
            ? { storage: { backend: storage.backend, s3Endpoint: storage.s3Endpoint, kvEndpoint: storage.kvEndpoint } }
            : {}),
        ...(backup ? { etcdSnapshots: backup.etcdSnapshots } : {}),
        ...(vaultBackups
            ? { vaultBackups: backup.vault?.inCluster ? `${vaultBackups} (in the cluster)` : vaultBackups }
            : {}),
        devices: settings.devices.map((d) => {
            const live = inMesh.find((m) => m.name === d.name);
            return { name: d.name, owner: d.owner, meshAddress: live?.meshAddress, inMesh: Boolean(live) };
        }),
    };
}

export function describeStatus(s: Status): string {
    if (!s.up) return `The family '${s.family}' is made but not brought up yet: run peoples-cloud up ${s.family}`;
    const lines = [`The family '${s.family}', as of its last up:`, `  nodes (mesh ${s.meshCidr ?? "?"}):`];
    for (const n of s.nodes)
        lines.push(`    ${n.name}  ${n.role}  mesh ${n.meshAddress}  reached at ${n.publicAddress}`);
    lines.push(`  Kubernetes API: ${s.kubernetesApi ?? "none (K3s is off)"}`);
    if (s.vault) {
        const sealed = s.vault.sealed.filter(Boolean).length;
        lines.push(
            `  Vault: ${s.vault.address}, ${sealed === 0 ? "unsealed" : `${sealed} of ${s.vault.sealed.length} sealed`}`,
        );
    }
    if (s.storage)
        lines.push(`  storage (${s.storage.backend}): S3 ${s.storage.s3Endpoint}, documents ${s.storage.kvEndpoint}`);
    if (s.etcdSnapshots) lines.push(`  etcd snapshots: ${s.etcdSnapshots}`);
    if (s.vaultBackups) lines.push(`  Vault backups: ${s.vaultBackups}`);
    lines.push(s.devices.length === 0 ? "  devices: none" : "  devices:");
    for (const d of s.devices) {
        lines.push(
            `    ${d.name} (${d.owner})  ${d.inMesh ? `in the mesh at ${d.meshAddress}` : "added; in the mesh after the next up"}`,
        );
    }
    return lines.join("\n");
}
