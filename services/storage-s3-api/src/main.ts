// The service's entry point. Settings come from the environment; secrets from files (mounted Kubernetes
// Secrets or Vault Agent templates), never from the command line or the environment.
import * as fs from "node:fs";
import { S3Client } from "@aws-sdk/client-s3";
import { createS3Server } from "./server";
import { TransitClient } from "./vault";

function setting(name: string, fallback?: string): string {
    const value = process.env[name] ?? fallback;
    if (value === undefined || value === "") throw new Error(`storage-s3-api: set ${name}`);
    return value;
}

const secretFile = (name: string) => fs.readFileSync(setting(name), "utf8").trim();

function main(): void {
    const backendCredentials = JSON.parse(secretFile("BACKEND_CREDENTIALS_FILE")) as {
        accessKeyId: string;
        secretAccessKey: string;
    };
    const server = createS3Server({
        region: setting("S3_REGION", "us-east-1"),
        accessKeys: JSON.parse(secretFile("ACCESS_KEYS_FILE")) as Record<string, string>,
        backend: new S3Client({
            endpoint: setting("BACKEND_ENDPOINT"),
            region: setting("BACKEND_REGION", "us-east-1"),
            forcePathStyle: true,
            credentials: backendCredentials,
            // Content is authenticated end to end; checksums on the backend leg only cost CPU.
            requestChecksumCalculation: "WHEN_REQUIRED",
            responseChecksumValidation: "WHEN_REQUIRED",
        }),
        transit: new TransitClient({
            address: setting("VAULT_ADDR"),
            token: () => secretFile("VAULT_TOKEN_FILE"),
            keyName: setting("TRANSIT_KEY", "storage-s3-api"),
        }),
        etagKey: Buffer.from(secretFile("ETAG_KEY_FILE"), "base64"),
        nameKey: process.env.NAME_KEY_FILE ? Buffer.from(secretFile("NAME_KEY_FILE"), "base64") : undefined,
    });
    const [host, port] = setting("LISTEN", "0.0.0.0:8080").split(/:(?=\d+$)/);
    server.listen(Number(port), host, () => console.log(`storage-s3-api listening on ${host}:${port}`));
    const stop = () => {
        server.close(() => process.exit(0));
        server.closeAllConnections();
    };
    process.on("SIGTERM", stop).on("SIGINT", stop);
}

try {
    main();
} catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
}
