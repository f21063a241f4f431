// JSON objects in storage-s3-api over the S3 protocol: read with their ETag, written on a condition.
import {
    DeleteObjectCommand,
    DeleteObjectsCommand,
    GetObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
    type S3Client,
} from "@aws-sdk/client-s3";

/** An answer for the client: an HTTP status, a stable code and a message that says what is wrong. */
export class KvError extends Error {
    constructor(
        readonly status: number,
        readonly code: string,
        message: string,
        /** Sent as Retry-After with a 503. */
        readonly retryAfterSeconds?: number,
    ) {
        super(message);
        this.name = "KvError";
    }
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** storage-s3-api unreachable or failing: the client may retry. */
function unavailable(err: unknown): KvError {
    const status = statusOf(err);
    return new KvError(503, "StorageUnavailable", `the storage service is unavailable${status ? ` (${status})` : ""}`);
}

export interface Listed {
    key: string;
    etag: string;
    /** The plaintext size, as storage-s3-api lists it. */
    size: number;
    /** When the object was written (ms since the epoch), as the backend says. */
    modified: number;
}

export interface Stored<T> {
    value: T;
    etag: string;
    bytes: number;
}

export class JsonObjects {
    constructor(
        private readonly s3: S3Client,
        private readonly bucket: string,
    ) {}

    async get<T>(key: string, ifNoneMatch?: string): Promise<Stored<T> | undefined | "unchanged"> {
        try {
            const res = await this.s3.send(
                new GetObjectCommand({ Bucket: this.bucket, Key: key, IfNoneMatch: ifNoneMatch }),
            );
            const text = await res.Body!.transformToString();
            return { value: JSON.parse(text) as T, etag: res.ETag ?? "", bytes: text.length };
        } catch (err) {
            if (statusOf(err) === 404) return undefined;
            if (statusOf(err) === 304) return "unchanged";
            throw unavailable(err);
        }
    }

    async read<T>(key: string): Promise<Stored<T> | undefined> {
        return (await this.get<T>(key)) as Stored<T> | undefined;
    }

    /** Writes on a condition; a failed condition (another writer won) is a 412 KvError. */
    async put(key: string, value: unknown, condition: { ifMatch?: string; ifNoneMatch?: "*" }): Promise<string> {
        try {
            const res = await this.s3.send(
                new PutObjectCommand({
                    Bucket: this.bucket,
                    Key: key,
                    Body: JSON.stringify(value),
                    ContentType: "application/json",
                    IfMatch: condition.ifMatch,
                    IfNoneMatch: condition.ifNoneMatch,
                }),
            );
            return res.ETag ?? "";
        } catch (err) {
            if (statusOf(err) === 412 || statusOf(err) === 409 || (condition.ifMatch && statusOf(err) === 404)) {
                throw new KvError(412, "PreconditionFailed", "the object changed since it was read");
            }
            throw unavailable(err);
        }
    }

    async delete(key: string): Promise<void> {
        try {
            await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
        } catch (err) {
            throw unavailable(err);
        }
    }

    async deleteMany(keys: string[]): Promise<void> {
        for (let i = 0; i < keys.length; i += 1000) {
            const batch = keys.slice(i, i + 1000);
            await this.s3
                .send(
                    new DeleteObjectsCommand({
                        Bucket: this.bucket,
                        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
                    }),
                )
                .catch((err: unknown) => {
                    throw unavailable(err);
                });
        }
    }

    /** One page of keys under a prefix, after `startAfter`. */
    async list(prefix: string, options: { startAfter?: string; limit?: number; delimiter?: string } = {}) {
        try {
            const res = await this.s3.send(
                new ListObjectsV2Command({
                    Bucket: this.bucket,
                    Prefix: prefix,
                    StartAfter: options.startAfter,
                    MaxKeys: options.limit,
                    Delimiter: options.delimiter,
                }),
            );
            return {
                objects: (res.Contents ?? []).map((o) => ({
                    key: o.Key ?? "",
                    etag: o.ETag ?? "",
                    size: o.Size ?? 0,
                    modified: o.LastModified?.getTime() ?? 0,
                })),
                prefixes: (res.CommonPrefixes ?? []).map((p) => p.Prefix ?? ""),
                truncated: res.IsTruncated ?? false,
            };
        } catch (err) {
            throw unavailable(err);
        }
    }

    /** Every key under a prefix, in order. */
    async listAll(prefix: string): Promise<Listed[]> {
        const all: Listed[] = [];
        for (let page = await this.list(prefix); ; page = await this.list(prefix, { startAfter: all.at(-1)?.key })) {
            all.push(...page.objects);
            if (!page.truncated || page.objects.length === 0) return all;
        }
    }
}
