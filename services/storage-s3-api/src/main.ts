// The service's entry point. Settings come from the environment; secrets from files (mounted Kubernetes
// Secrets or Vault Agent templates), never from the command line or the environment.
import * as fs from "node:fs";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { closeGracefully, createOpsServer, logLine, Metrics } from "./ops";
import { createS3Server } from "./server";
import { TransitClient } from "./vault";

function setting(name: string, fallback?: string): string {
    const value = process.env[name] ?? fallback;
    if (value === undefined || value === "") throw new Error(`storage-s3-api: set ${name}`);
    return value;
}

const secretFile = (name: string) => fs.readFileSync(setting(name), "utf8").trim();

/** A JSON secret file; a parse error would quote the file, so it is replaced by one that does not. */
function jsonSecretFile<T>(name: string): T {
    try {
        return JSON.parse(secretFile(name)) as T;
    } catch {
        throw new Error(`storage-s3-api: ${name} does not hold valid JSON`);
    }
}

function listen(server: { listen(port: number, host: string, done: () => void): unknown }, name: string) {
    const [host, port] = setting(name).split(/:(?=\d+$)/);
    server.listen(Number(port), host, () => logLine("info", "listening", { on: name, host, port: Number(port) }));
}

function main(): void {
    const backendCredentials = jsonSecretFile<{ accessKeyId: string; secretAccessKey: string }>(
        "BACKEND_CREDENTIALS_FILE",
    );
    const backend = new S3Client({
        endpoint: setting("BACKEND_ENDPOINT"),
        region: setting("BACKEND_REGION", "us-east-1"),
        forcePathStyle: true,
        credentials: backendCredentials,
        // Content is authenticated end to end; checksums on the backend leg only cost CPU.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
    });
    const transit = new TransitClient({
        address: setting("VAULT_ADDR"),
        token: () => secretFile("VAULT_TOKEN_FILE"),
        keyName: setting("TRANSIT_KEY", "storage-s3-api"),
    });
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

try {
    main();
} catch (err) {
    logLine("error", err instanceof Error ? err.message : "start-up failed");
    process.exit(1);
}
