// The service's entry point (settings and secrets: see settings.ts).
import * as v8 from "node:v8";
import { ListBucketsCommand } from "@aws-sdk/client-s3";
import { closeGracefully, createOpsServer, logLine, Metrics } from "./ops";
import { createS3Server } from "./server";
import { backendFromSettings, jsonSecretFile, secretFile, setting, transitFromSettings } from "./settings";

// Streaming allocates a Buffer per socket read and per cipher call, and V8 counts those bytes against the old
// generation's limit. With its default growth that limit sits so close to the small live heap (about 11 MB)
// that a full GC runs every 50 ms while objects stream, and costs a third of the process's CPU. A limit
// five times the live heap ends that; V8 reads this flag at each GC, so setting it here takes effect.
v8.setFlagsFromString("--heap-growing-percent=400");

function listen(server: { listen(port: number, host: string, done: () => void): unknown }, name: string) {
    const [host, port] = setting(name).split(/:(?=\d+$)/);
    server.listen(Number(port), host, () => logLine("info", "listening", { on: name, host, port: Number(port) }));
}

async function main(): Promise<void> {
    const backend = backendFromSettings();
    const transit = transitFromSettings((message, fields) => logLine("info", message, fields));
    // A refused login (a wrong role, a token of another service account) stops the service here, named.
    await transit.login();
    await transit.assertDerivedKey();
    const metrics = new Metrics(() => transit.calls);
    const server = createS3Server({
        region: setting("S3_REGION", "us-east-1"),
        accessKeys: jsonSecretFile<Record<string, string>>("ACCESS_KEYS_FILE"),
        backend,
        transit,
        etagKey: Buffer.from(secretFile("ETAG_KEY_FILE"), "base64"),
        nameKey: process.env.NAME_KEY_FILE ? Buffer.from(secretFile("NAME_KEY_FILE"), "base64") : undefined,
        observe: (event) => {
            metrics.record(event);
            logLine(event.status >= 500 ? "error" : "info", "request", event);
        },
    });
    let draining = false;
    const ops = createOpsServer({
        metrics,
        draining: () => draining,
        checkDependencies: async () => {
            await backend.send(new ListBucketsCommand({})).catch(() => {
                throw new Error("the storage backend is unreachable");
            });
            await transit.health();
        },
    });
    process.env.LISTEN ??= "0.0.0.0:8080";
    process.env.OPS_LISTEN ??= "0.0.0.0:9090";
    listen(server, "LISTEN");
    listen(ops, "OPS_LISTEN");

    const graceMs = Number(setting("SHUTDOWN_GRACE_SECONDS", "25")) * 1000;
    const stop = (signal: string) => {
        if (draining) return;
        draining = true;
        logLine("info", "draining", { signal, graceMs });
        void closeGracefully(server, graceMs).then(() => {
            logLine("info", "stopped");
            ops.close(() => process.exit(0));
            ops.closeAllConnections();
        });
    };
    process.on("SIGTERM", stop).on("SIGINT", stop);
}

main().catch((err: unknown) => {
    logLine("error", err instanceof Error ? err.message : "start-up failed");
    process.exit(1);
});
