// The service's entry point: settings from the environment, secrets from files. It listens at once, repairs
// every collection in the background (a crash between a document's commit and its index is healed, and
// queries are correct meanwhile), and reports ready once that repair is done.
import * as fs from "node:fs";
import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { Collections } from "./collections";
import { JsonObjects } from "./objects";
import { createKvServer } from "./server";
import { DEFAULT_PAGE_BYTES, DEFAULT_TIMING, quietLogger, Store } from "./store";

function setting(name: string, fallback?: string): string {
    const value = process.env[name] ?? fallback;
    if (value === undefined || value === "") throw new Error(`storage-kv-api: set ${name}`);
    return value;
}

/** A whole-number setting from `min` to `max`; anything else stops the start, naming the variable. */
function wholeSetting(name: string, fallback: number, min: number, max: number): number {
    const text = setting(name, String(fallback));
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
        throw new Error(`storage-kv-api: ${name} must be a whole number from ${min} to ${max}`);
    }
    return value;
}

function secretFile(name: string): string {
    try {
        return fs.readFileSync(setting(name), "utf8").trim();
    } catch (err) {
        if (err instanceof Error && err.message.startsWith("storage-kv-api:")) throw err;
        throw new Error(`storage-kv-api: ${name} must name a readable file`, { cause: err });
    }
}

/** A JSON secret file; a parse error would quote the file, so it is replaced by one that does not. */
function jsonSecretFile<T>(name: string): T {
    const text = secretFile(name);
    try {
        return JSON.parse(text) as T;
    } catch {
        throw new Error(`storage-kv-api: ${name} must name a file of valid JSON`);
    }
}

const log = (message: string, fields: object = {}) =>
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), message, ...fields })}\n`);

function main(): void {
    const credentials = jsonSecretFile<{ accessKeyId: string; secretAccessKey: string }>("S3_CREDENTIALS_FILE");
    const bucket = setting("BUCKET", "kv-store");
    const s3 = new S3Client({
        endpoint: setting("STORAGE_S3_ENDPOINT"),
        region: setting("S3_REGION", "us-east-1"),
        forcePathStyle: true,
        credentials,
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        maxAttempts: 2,
        logger: quietLogger,
    });
    const secret = Buffer.from(secretFile("SECRET_KEY_FILE"), "base64");
    if (secret.length < 32) throw new Error("storage-kv-api: SECRET_KEY_FILE must hold at least 32 bytes, base64");
    const objects = new JsonObjects(s3, bucket);
    const store = new Store(objects, new Collections(objects, DEFAULT_TIMING.schemaTtlMs), {
        secret,
        timing: { writeDeadlineMs: wholeSetting("WRITE_DEADLINE_MS", DEFAULT_TIMING.writeDeadlineMs, 100, 600_000) },
        pageBytes: wholeSetting("PAGE_BYTES", DEFAULT_PAGE_BYTES, 256, 16 * 2 ** 20),
    });

    let repaired = false;
    let draining = false;
    const repairAtStart = async () => {
        for (let attempt = 1; !repaired; attempt++) {
            try {
                const reports = await store.repairAll();
                repaired = true;
                log("repaired", { collections: Object.keys(reports).length });
            } catch (err) {
                log("start-up repair failed; retrying", { error: (err as Error).name, attempt });
                await new Promise((r) => setTimeout(r, Math.min(30_000, 1_000 * attempt)));
            }
        }
    };
    const ready = async () => {
        if (!repaired || draining) return false;
        return s3.send(new HeadBucketCommand({ Bucket: bucket })).then(
            () => true,
            () => false,
        );
    };

    const server = createKvServer({
        store,
        tokens: jsonSecretFile<Record<string, string>>("TOKENS_FILE"),
        maxDocumentBytes: wholeSetting("MAX_DOCUMENT_BYTES", 256 * 1024, 2, 16 * 2 ** 20),
        ready,
        log: (fields) => log("request", fields),
    });
    const [host, port] = setting("LISTEN", "0.0.0.0:8080").split(/:(?=\d+$)/);
    server.listen(Number(port), host, () => {
        log("listening", { host, port: Number(port) });
        void repairAtStart();
    });
    const grace = Number(setting("SHUTDOWN_GRACE_SECONDS", "25")) * 1000;
    const stop = () => {
        if (draining) return;
        draining = true;
        log("draining");
        // Stop taking connections, let requests in flight finish, then exit.
        server.close(() => {
            log("stopped");
            process.exit(0);
        });
        // Keep-alive connections become idle as their last request ends: close them as they do.
        setInterval(() => server.closeIdleConnections(), 100).unref();
        setTimeout(() => server.closeAllConnections(), grace).unref();
    };
    process.on("SIGTERM", stop).on("SIGINT", stop);
}

try {
    main();
} catch (err) {
    log(err instanceof Error && err.message.startsWith("storage-kv-api:") ? err.message : "start-up failed");
    process.exit(1);
}
