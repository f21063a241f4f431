// Encrypted objects on the backend: what a PUT writes and what a GET or HEAD checks before any byte is sent.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import {
    CopyObjectCommand,
    DeleteObjectCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
    type S3Client,
} from "@aws-sdk/client-s3";
import { S3Error } from "./errors";
import { commitmentMatches, deriveObjectKeys, nameBinding, type ObjectKeys, OBJECT_ID_BYTES } from "./format/keys";
import {
    ciphertextLength,
    DEFAULT_SEGMENT_SIZE,
    type OpenRange,
    OpenStream,
    planRange,
    plaintextLength,
    SealStream,
    wholeObject,
} from "./format/segments";
import type { TransitClient } from "./vault";

/** What the client gave us about an object besides its bytes; stored only sealed. */
export interface ObjectInfo {
    length: number;
    contentType?: string;
    userMetadata: Record<string, string>;
    lastModified?: Date;
    etag: string;
}

interface SealedMeta {
    length: number;
    contentType?: string;
    userMetadata: Record<string, string>;
}

const SEGMENT_LOG2 = Math.log2(DEFAULT_SEGMENT_SIZE);
const b64u = (b: Buffer) => b.toString("base64url");

function sealMeta(keys: ObjectKeys, objectId: Buffer, meta: SealedMeta): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", keys.meta, nonce);
    cipher.setAAD(Buffer.concat([Buffer.from("pce1 meta"), objectId]));
    const body = Buffer.concat([cipher.update(JSON.stringify(meta)), cipher.final(), cipher.getAuthTag()]);
    return b64u(Buffer.concat([nonce, body]));
}

function openMeta(keys: ObjectKeys, objectId: Buffer, sealed: string): SealedMeta {
    const raw = Buffer.from(sealed, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", keys.meta, raw.subarray(0, 12));
    decipher.setAAD(Buffer.concat([Buffer.from("pce1 meta"), objectId]));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    try {
        return JSON.parse(
            Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString(),
        ) as SealedMeta;
    } catch {
        throw new S3Error("InternalError", "the object's metadata failed authentication");
    }
}

export class EncryptedObjects {
    constructor(
        private readonly backend: S3Client,
        private readonly transit: TransitClient,
        /** Turns backend ETags into opaque client ETags (never MD5-shaped). */
        private readonly etagKey: Buffer,
    ) {}

    clientEtag(backendEtag: string | undefined): string {
        return `"${createHmac("sha256", this.etagKey)
            .update(backendEtag ?? "")
            .digest("hex")
            .slice(0, 40)}"`;
    }

    /** `ifNoneMatch: "*"` writes only if the key is free: one conditional backend call, atomic by construction. */
    async put(bucket: string, key: string, body: Readable, info: SealedMeta, ifNoneMatch?: "*"): Promise<string> {
        const objectId = randomBytes(OBJECT_ID_BYTES);
        const dek = await this.transit.newDataKey(objectId);
        const keys = deriveObjectKeys(dek.plaintext, objectId);
        const sealed = body.pipe(
            new SealStream({ key: keys.data, objectId, part: 0, segmentSize: DEFAULT_SEGMENT_SIZE }),
        );
        body.on("error", (err) => sealed.destroy(err));
        const res = await this.backend.send(
            new PutObjectCommand({
                Bucket: bucket,
                Key: key,
                Body: sealed,
                ContentLength: ciphertextLength(info.length, DEFAULT_SEGMENT_SIZE),
                ContentType: "application/octet-stream",
                IfNoneMatch: ifNoneMatch,
                Metadata: {
                    pce: `1;${SEGMENT_LOG2};s`,
                    "pce-id": b64u(objectId),
                    "pce-k": dek.wrapped,
                    "pce-c": b64u(keys.commitment),
                    "pce-b": b64u(nameBinding(keys, bucket, key)),
                    "pce-m": sealMeta(keys, objectId, info),
                },
            }),
        );
        return this.clientEtag(res.ETag);
    }

    /** Unwraps and checks everything the backend holds about an object before its content is touched. */
    private async open(bucket: string, key: string, metadata: Record<string, string> | undefined, size: number) {
        const m = metadata ?? {};
        if (!m.pce?.startsWith("1;") || !m["pce-id"] || !m["pce-k"] || !m["pce-c"] || !m["pce-m"]) {
            throw new S3Error("InternalError", "the backend object is not in a format this service wrote");
        }
        const objectId = Buffer.from(m["pce-id"], "base64url");
        const segmentSize = 2 ** Number(m.pce.split(";")[1]);
        let dek: Buffer;
        try {
            dek = await this.transit.unwrap(m["pce-k"], objectId);
        } catch {
            throw new S3Error("InternalError", "the object's data key could not be unwrapped");
        }
        const keys = deriveObjectKeys(dek, objectId);
        if (!commitmentMatches(keys, Buffer.from(m["pce-c"], "base64url"))) {
            throw new S3Error("InternalError", "the object's key commitment does not match");
        }
        if (b64u(nameBinding(keys, bucket, key)) !== m["pce-b"]) {
            throw new S3Error("InternalError", "the object was not written under this name");
        }
        const meta = openMeta(keys, objectId, m["pce-m"]);
        if (plaintextLength(size, segmentSize) !== meta.length) {
            throw new S3Error("InternalError", "the object's size does not match its sealed length");
        }
        return { keys, objectId, segmentSize, meta };
    }

    async head(bucket: string, key: string): Promise<ObjectInfo> {
        const res = await this.backend.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        const { meta } = await this.open(bucket, key, res.Metadata, res.ContentLength ?? 0);
        return { ...meta, lastModified: res.LastModified, etag: this.clientEtag(res.ETag) };
    }

    /**
     * The object's info and a stream of its plaintext: all of it in one backend GET, or, given a range,
     * bytes start..end (inclusive) fetched as whole segments after a HEAD tells the object's length.
     */
    async get(
        bucket: string,
        key: string,
        range?: (length: number) => { start: number; end: number } | undefined,
    ): Promise<{ info: ObjectInfo; body: Readable; range?: { start: number; end: number } }> {
        if (!range) {
            const res = await this.backend.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
            const source = res.Body as Readable;
            try {
                const opened = await this.open(bucket, key, res.Metadata, res.ContentLength ?? 0);
                const info = { ...opened.meta, lastModified: res.LastModified, etag: this.clientEtag(res.ETag) };
                return { info, body: this.decrypt(source, opened, wholeObject(info.length, opened.segmentSize)) };
            } catch (err) {
                source.destroy();
                throw err;
            }
        }
        const head = await this.backend.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        const opened = await this.open(bucket, key, head.Metadata, head.ContentLength ?? 0);
        const info = { ...opened.meta, lastModified: head.LastModified, etag: this.clientEtag(head.ETag) };
        const wanted = range(info.length);
        const plan = wanted
            ? planRange(wanted.start, wanted.end, info.length, opened.segmentSize)
            : { ...wholeObject(info.length, opened.segmentSize), cipherStart: undefined, cipherEnd: undefined };
        const res = await this.backend.send(
            new GetObjectCommand({
                Bucket: bucket,
                Key: key,
                Range: plan.cipherEnd === undefined ? undefined : `bytes=${plan.cipherStart}-${plan.cipherEnd}`,
                // The ETag condition makes the body the one whose metadata was just checked.
                IfMatch: head.ETag,
            }),
        );
        return { info, body: this.decrypt(res.Body as Readable, opened, plan), range: wanted };
    }

    private decrypt(
        source: Readable,
        opened: { keys: ObjectKeys; objectId: Buffer; segmentSize: number },
        plan: OpenRange,
    ) {
        const body = source.pipe(
            new OpenStream(
                { key: opened.keys.data, objectId: opened.objectId, part: 0, segmentSize: opened.segmentSize },
                plan,
            ),
        );
        source.on("error", (err) => body.destroy(err));
        return body;
    }

    async delete(bucket: string, key: string): Promise<void> {
        await this.backend.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }

    /**
     * After a transit key rotation: re-wraps every object's data key under the newest key version. Content is
     * not touched; the backend copies each object onto itself with the new wrapped key, only if it is still
     * the object that was read (a concurrent overwrite is left alone, it has a fresh key already).
     */
    async rewrapBucket(bucket: string): Promise<{ objects: number; rewrapped: number }> {
        let objects = 0;
        let rewrapped = 0;
        let token: string | undefined;
        do {
            const page = await this.backend.send(
                new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 250 }),
            );
            const keys = (page.Contents ?? []).map((o) => o.Key ?? "").filter((k) => k && !k.startsWith(".pce/"));
            const heads = await Promise.all(
                keys.map((Key) => this.backend.send(new HeadObjectCommand({ Bucket: bucket, Key }))),
            );
            const sealed = heads
                .map((h, i) => ({ key: keys[i], head: h, meta: h.Metadata ?? {} }))
                .filter((o) => o.meta["pce-k"]);
            const fresh = await this.transit.rewrap(
                sealed.map((o) => ({ wrapped: o.meta["pce-k"], context: Buffer.from(o.meta["pce-id"], "base64url") })),
            );
            for (const [i, o] of sealed.entries()) {
                objects++;
                if (fresh[i] === o.meta["pce-k"]) continue;
                await this.backend.send(
                    new CopyObjectCommand({
                        Bucket: bucket,
                        Key: o.key,
                        CopySource: `${bucket}/${encodeURIComponent(o.key)}`,
                        CopySourceIfMatch: o.head.ETag,
                        MetadataDirective: "REPLACE",
                        ContentType: "application/octet-stream",
                        Metadata: { ...o.meta, "pce-k": fresh[i] },
                    }),
                );
                rewrapped++;
            }
            token = page.NextContinuationToken;
        } while (token);
        return { objects, rewrapped };
    }

    /**
     * Server-side copy without re-encryption: the backend copies the ciphertext, and only the name binding
     * (and, when the client replaces them, the sealed metadata) is written anew for the destination.
     */
    async copy(
        source: { bucket: string; key: string },
        target: { bucket: string; key: string },
        replaceMetadata?: { contentType?: string; userMetadata: Record<string, string> },
    ): Promise<{ etag: string; lastModified?: Date }> {
        const head = await this.backend.send(new HeadObjectCommand({ Bucket: source.bucket, Key: source.key }));
        const opened = await this.open(source.bucket, source.key, head.Metadata, head.ContentLength ?? 0);
        const meta = replaceMetadata ? { length: opened.meta.length, ...replaceMetadata } : opened.meta;
        const res = await this.backend.send(
            new CopyObjectCommand({
                Bucket: target.bucket,
                Key: target.key,
                CopySource: `${source.bucket}/${encodeURIComponent(source.key)}`,
                // The ciphertext copied is the one whose metadata was just checked.
                CopySourceIfMatch: head.ETag,
                MetadataDirective: "REPLACE",
                ContentType: "application/octet-stream",
                Metadata: {
                    ...head.Metadata,
                    "pce-b": b64u(nameBinding(opened.keys, target.bucket, target.key)),
                    "pce-m": sealMeta(opened.keys, opened.objectId, meta),
                },
            }),
        );
        return { etag: this.clientEtag(res.CopyObjectResult?.ETag), lastModified: res.CopyObjectResult?.LastModified };
    }
}
