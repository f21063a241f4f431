// The job to run after a transit key rotation (a Kubernetes CronJob beside the service, with the same
// settings): re-wraps every object's data key under the newest key version, content untouched. Buckets
// from REWRAP_BUCKETS (comma-separated), or every bucket. Its Vault token needs only transit/rewrap.
import { ListBucketsCommand } from "@aws-sdk/client-s3";
import { EncryptedObjects } from "./objects";
import { logLine } from "./ops";
import { backendFromSettings, transitFromSettings } from "./settings";

async function main(): Promise<void> {
    const backend = backendFromSettings();
    // Rewrapping reads and writes only backend metadata: no ETag or name key is needed.
    const objects = new EncryptedObjects(
        backend,
        transitFromSettings((message, fields) => logLine("info", message, fields)),
        Buffer.alloc(32),
    );
    const buckets = process.env.REWRAP_BUCKETS
        ? process.env.REWRAP_BUCKETS.split(",").filter(Boolean)
        : ((await backend.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name ?? "");
    for (const bucket of buckets) {
        const started = Date.now();
        const done = await objects.rewrapBucket(bucket);
        logLine("info", "rewrapped", { bucket, ...done, seconds: (Date.now() - started) / 1000 });
    }
}

main().catch((err: unknown) => {
    logLine("error", "rewrap failed", { error: err instanceof Error ? err.message : "unknown" });
    process.exit(1);
});
