// The real chain the service tests run against: MinIO and OpenBao on loopback, and services in this process.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { s3Client } from "../../../tests/helpers/s3";
import {
    createTransitKey,
    type MinioServer,
    type OpenBaoServer,
    startMinio,
    startOpenBaoDev,
} from "../../../tests/helpers/servers";
import { createS3Server, type ServiceOptions } from "../src/server";
import { TransitClient } from "../src/vault";

export interface RunningService {
    server: Server;
    url: string;
    /** An AWS SDK client signed with a valid access key of this service. */
    s3: S3Client;
    accessKey: { id: string; secret: string };
    stop(): Promise<void>;
}

export interface Chain {
    minio: MinioServer;
    bao: OpenBaoServer;
    transit: TransitClient;
    /** Straight to MinIO, as the backend sees things. */
    direct: S3Client;
    startService(options?: Partial<ServiceOptions>): Promise<RunningService>;
    stop(): Promise<void>;
}

export async function startChain(): Promise<Chain> {
    const [minio, bao] = await Promise.all([startMinio(), startOpenBaoDev()]);
    await createTransitKey(bao, "storage-s3-api");
    const transit = new TransitClient({
        address: bao.url,
        token: () => bao.rootToken ?? "",
        keyName: "storage-s3-api",
    });
    const direct = s3Client(minio.url, minio.accessKeyId, minio.secretAccessKey);
    const services: RunningService[] = [];

    async function startService(options: Partial<ServiceOptions> = {}): Promise<RunningService> {
        const accessKey = { id: "garcia-family", secret: randomBytes(24).toString("base64url") };
        const server = createS3Server({
            region: "us-east-1",
            accessKeys: { [accessKey.id]: accessKey.secret },
            backend: direct,
            transit,
            etagKey: randomBytes(32),
            ...options,
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const stop = async () => {
            server.closeAllConnections();
            await new Promise((resolve) => server.close(resolve));
        };
        const service = { server, url, s3: s3Client(url, accessKey.id, accessKey.secret), accessKey, stop };
        services.push(service);
        return service;
    }

    return {
        minio,
        bao,
        transit,
        direct,
        startService,
        stop: async () => {
            await Promise.all(services.map((s) => s.stop()));
            await Promise.all([minio.stop(), bao.stop()]);
        },
    };
}

/** Every file MinIO keeps, with its path: what a backend operator could read. */
export function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
    return fs
        .readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => {
            const file = path.join(e.parentPath, e.name);
            return { path: path.relative(dir, file), bytes: fs.readFileSync(file) };
        });
}
