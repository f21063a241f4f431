// The service's entry point: settings from the environment, secrets from files. On start-up every collection
// is repaired, so a crash between a document's commit and its index is healed before traffic arrives.
import * as fs from "node:fs";
import { S3Client } from "@aws-sdk/client-s3";
import { JsonObjects } from "./objects";
import { createKvServer } from "./server";
import { Store } from "./store";

function setting(name: string, fallback?: string): string {
    const value = process.env[name] ?? fallback;
    if (value === undefined || value === "") throw new Error(`storage-kv-api: set ${name}`);
    return value;
}

function jsonSecretFile<T>(name: string): T {
    try {
        return JSON.parse(fs.readFileSync(setting(name), "utf8")) as T;
    } catch {
        throw new Error(`storage-kv-api: ${name} must name a file of valid JSON`);
    }
}

const log = (message: string, fields: object = {}) =>
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), message, ...fields })}\n`);

async function main(): Promise<void> {
    const credentials = jsonSecretFile<{ accessKeyId: string; secretAccessKey: string }>("S3_CREDENTIALS_FILE");
    const s3 = new S3Client({
        endpoint: setting("STORAGE_S3_ENDPOINT"),
        region: setting("S3_REGION", "us-east-1"),
        forcePathStyle: true,
        credentials,
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
    });
    const store = new Store(new JsonObjects(s3, setting("BUCKET", "kv-store")), {
        secret: Buffer.from(fs.readFileSync(setting("SECRET_KEY_FILE"), "utf8").trim(), "base64"),
    });
    const repaired = await store.repairAll();
    log("repaired", { collections: repaired.length });
    const server = createKvServer({
        store,
        tokens: jsonSecretFile<Record<string, string>>("TOKENS_FILE"),
        maxDocumentBytes: Number(setting("MAX_DOCUMENT_BYTES", String(256 * 1024))),
    });
    const [host, port] = setting("LISTEN", "0.0.0.0:8080").split(/:(?=\d+$)/);
    server.listen(Number(port), host, () => log("listening", { host, port: Number(port) }));
    const stop = () => {
        log("draining");
        server.close(() => process.exit(0));
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 25_000).unref();
    };
    process.on("SIGTERM", stop).on("SIGINT", stop);
}

main().catch((err: unknown) => {
    log(err instanceof Error ? err.message : "start-up failed");
    process.exit(1);
});
