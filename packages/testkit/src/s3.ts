// An S3 client for tests and benchmarks: path-style, loopback, no retries, checksums only where required.
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";

export function s3Client(
    endpoint: string,
    accessKeyId: string,
    secretAccessKey: string,
    overrides: Partial<S3ClientConfig> = {},
): S3Client {
    return new S3Client({
        endpoint,
        region: "us-east-1",
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        maxAttempts: 1,
        // Tests lose conditional writes on purpose; the SDK would print a console warning for each.
        logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {} },
        ...overrides,
    });
}
