// SeaweedFS as the in-cluster S3 backend, through its official chart: masters (Raft from three), volume servers
// on K3s's local-path volumes, filers and the S3 gateway, whose identities come from an existing Secret that
// the Vault Secrets Operator writes. Replicated only where the cluster has the nodes for it.
import { helmChart, type HelmChart, type PinnedImage } from "../../lib/kube";
import { seaweedfs } from "./versions";

/** The Secret (key `seaweedfs_s3_config`) the S3 gateway reads its identities from, synced from Vault. */
export const SEAWEEDFS_S3_CONFIG_SECRET = "seaweedfs-s3-config";
/** The S3 gateway's in-cluster endpoint, for storage-s3-api. */
export const SEAWEEDFS_S3_PORT = 8333;
export const SEAWEEDFS_S3_ENDPOINT = `http://seaweedfs-s3.${seaweedfs.chart.namespace}.svc:${SEAWEEDFS_S3_PORT}`;
/** The pods' `app.kubernetes.io/name`, which the network policies select on. */
export const SEAWEEDFS_NAME = "seaweedfs";

export interface SeaweedfsLayout {
    /** Masters: Raft of three, or one. */
    masters: 1 | 3;
    /** Volume servers, one per node, at most three. */
    volumeServers: number;
    /** Filers and S3 gateways. */
    filers: number;
    /** XYZ: copies in other data centres, other racks, other servers of the rack. */
    replication: "000" | "001";
}

/**
 * One node: one of each, one copy — nothing to fail over to. Two nodes: two volume servers holding a copy
 * each ("001"), so a lost disk loses no data, but one master (Raft needs three), so the cluster serves only
 * while the master's node is up, and with one volume server left new writes fail (two copies need two
 * servers). Three or more: three masters, three volume servers, two copies on different nodes, two filers and
 * gateways: one lost node keeps reads and writes going (new volumes go to the two servers left).
 */
export function seaweedfsLayout(nodeCount: number): SeaweedfsLayout {
    if (nodeCount >= 3) return { masters: 3, volumeServers: 3, filers: 2, replication: "001" };
    if (nodeCount === 2) return { masters: 1, volumeServers: 2, filers: 1, replication: "001" };
    return { masters: 1, volumeServers: 1, filers: 1, replication: "000" };
}

type Resources = { requests: { cpu: string; memory: string }; limits: { cpu: string; memory: string } };
const resources = (cpu: string, memory: string, cpuLimit: string, memoryLimit: string): Resources => ({
    requests: { cpu, memory },
    limits: { cpu: cpuLimit, memory: memoryLimit },
});
const claim = (size: string) => ({ type: "persistentVolumeClaim", size, storageClass: "local-path" });
/** Log to stderr (the chart's default is a hostPath folder). */
const stderrLogs = { type: "" };

/**
 * The chart's command runs `weed` directly, past the image's entrypoint that would drop root: run it as the
 * image's own user (seaweed, 1000) instead. K3s's local-path volumes are folders of mode 0777, so it can write.
 */
const podSecurityContext = {
    enabled: true,
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    fsGroup: 1000,
    seccompProfile: { type: "RuntimeDefault" },
} as const;
const containerSecurityContext = {
    enabled: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
} as const;
const hardened = { podSecurityContext, containerSecurityContext };

type Hardened = typeof hardened;

export interface SeaweedfsValues {
    global: { seaweedfs: { enableReplication: boolean; replicationPlacement: string } };
    image: PinnedImage;
    master: Hardened & {
        replicas: number;
        defaultReplication: string;
        data: ReturnType<typeof claim>;
        logs: typeof stderrLogs;
        resources: Resources;
    };
    volume: Hardened & {
        replicas: number;
        dataDirs: (ReturnType<typeof claim> & { name: string; maxVolumes: number })[];
        resizeHook: { enabled: false };
        resources: Resources;
    };
    filer: Hardened & {
        replicas: number;
        defaultReplicaPlacement: string;
        data: ReturnType<typeof claim>;
        logs: typeof stderrLogs;
        s3: { enabled: false };
        resources: Resources;
    };
    s3: Hardened & {
        enabled: true;
        replicas: number;
        port: number;
        enableAuth: true;
        existingConfigSecret: string;
        logs: typeof stderrLogs;
        resources: Resources;
    };
}

/** The chart for this many nodes; `size` is each volume server's volume. */
export function seaweedfsChart(nodeCount: number, size: string): HelmChart {
    const layout = seaweedfsLayout(nodeCount);
    const values: SeaweedfsValues = {
        global: {
            seaweedfs: { enableReplication: layout.replication !== "000", replicationPlacement: layout.replication },
        },
        image: seaweedfs.image,
        master: {
            ...hardened,
            replicas: layout.masters,
            defaultReplication: layout.replication,
            data: claim("1Gi"),
            logs: stderrLogs,
            resources: resources("50m", "64Mi", "500m", "256Mi"),
        },
        volume: {
            ...hardened,
            replicas: layout.volumeServers,
            dataDirs: [{ name: "data1", ...claim(size), maxVolumes: 0 }],
            // Its job would patch volume claims with another image; sizes change by hand here.
            resizeHook: { enabled: false },
            resources: resources("100m", "256Mi", "1", "1Gi"),
        },
        filer: {
            ...hardened,
            replicas: layout.filers,
            defaultReplicaPlacement: layout.replication,
            data: claim("5Gi"),
            logs: stderrLogs,
            s3: { enabled: false },
            resources: resources("100m", "128Mi", "1", "512Mi"),
        },
        s3: {
            ...hardened,
            enabled: true,
            replicas: layout.filers,
            port: SEAWEEDFS_S3_PORT,
            enableAuth: true,
            existingConfigSecret: SEAWEEDFS_S3_CONFIG_SECRET,
            logs: stderrLogs,
            resources: resources("100m", "128Mi", "1", "512Mi"),
        },
    };
    return helmChart(seaweedfs.chart, values);
}

/** SeaweedFS's identity file: one admin identity, storage-s3-api's, with every action. */
export function seaweedfsS3Config(credentials: { accessKeyId: string; secretAccessKey: string }): string {
    return JSON.stringify({
        identities: [
            {
                name: "storage-s3-api",
                credentials: [{ accessKey: credentials.accessKeyId, secretKey: credentials.secretAccessKey }],
                actions: ["Admin", "Read", "List", "Tagging", "Write"],
            },
        ],
    });
}
