// Encrypted objects on the backend: what a PUT writes and what a GET or HEAD checks before any byte is sent.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import type { Readable } from "node:stream";
import {
    AbortMultipartUploadCommand,
    CompleteMultipartUploadCommand,
    CopyObjectCommand,
    CreateMultipartUploadCommand,
    DeleteObjectCommand,
    DeleteObjectsCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectsV2Command,
    ListPartsCommand,
    PutObjectCommand,
    type S3Client,
    UploadPartCommand,
} from "@aws-sdk/client-s3";
import { pipeline, Readable as ReadableStream } from "node:stream";
import {
    openParts,
    openTable,
    partCipherLength,
    partEtag,
    partHeader,
    partKey,
    type PartEntry,
    planPartsRange,
    readPartEtag,
    sealTable,
} from "./format/parts";
import { MadeAhead } from "./ahead";
import { S3Error } from "./errors";
import { MAX_BACKEND_KEY_BYTES, type NameCipher } from "./format/names";
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
import type { DataKey, TransitClient } from "./vault";

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

/**
 * How long a data key made ahead may wait for its object. A key wrapped before a transit key rotation is
 * rewrapped only if it is on the backend when the rewrap job lists it, like the key of an upload still in
 * flight; a bound keeps one made ahead from entering that window long after the rotation.
 */
const DATA_KEY_MAX_WAIT_MS = 10_000;
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
        /** With name privacy on, encrypts every key before it reaches the backend. */
        private readonly names?: NameCipher,
    ) {}

    /** The next object's id and data key, made ahead so a PUT does not wait for Vault. */
    private readonly newKeys = new MadeAhead<{ objectId: Buffer; dek: DataKey }>(async () => {
        const objectId = randomBytes(OBJECT_ID_BYTES);
        return { objectId, dek: await this.transit.newDataKey(objectId) };
    }, DATA_KEY_MAX_WAIT_MS);

    /** The backend key of a client key. */
    stored(bucket: string, key: string): string {
        if (!this.names) return key;
        const stored = this.names.encrypt(bucket, key);
        if (Buffer.byteLength(stored) > MAX_BACKEND_KEY_BYTES) {
            throw new S3Error("KeyTooLongError", "the key is too long once encrypted for the backend");
        }
        return stored;
    }

    /**
     * The client's ETag: the backend ETag encrypted deterministically (SIV: the IV is a MAC of it), so it
     * is stable, opaque, never MD5-shaped, and can be turned back into the backend ETag for If-Match.
     */
    clientEtag(backendEtag: string | undefined): string {
        const plain = Buffer.from(backendEtag ?? "", "utf8");
        const iv = createHmac("sha256", this.etagKeys.mac).update(plain).digest().subarray(0, 16);
        const cipher = createCipheriv("aes-256-ctr", this.etagKeys.enc, iv);
        return `"${Buffer.concat([iv, cipher.update(plain), cipher.final()]).toString("base64url")}"`;
    }

    /** The backend ETag behind a client ETag; undefined for an ETag this service did not give. */
    backendEtag(clientEtag: string): string | undefined {
        const raw = Buffer.from(clientEtag.trim().replace(/^"|"$/g, ""), "base64url");
        if (raw.length < 16) return undefined;
        const iv = raw.subarray(0, 16);
        const decipher = createDecipheriv("aes-256-ctr", this.etagKeys.enc, iv);
        const plain = Buffer.concat([decipher.update(raw.subarray(16)), decipher.final()]);
        const expected = createHmac("sha256", this.etagKeys.mac).update(plain).digest().subarray(0, 16);
        return timingSafeEqual(iv, expected) ? plain.toString("utf8") : undefined;
    }

    private get etagKeys(): { enc: Buffer; mac: Buffer } {
        this.derivedEtagKeys ??= {
            enc: Buffer.from(hkdfSync("sha256", this.etagKey, Buffer.alloc(0), "pce1 etag enc", 32)),
            mac: Buffer.from(hkdfSync("sha256", this.etagKey, Buffer.alloc(0), "pce1 etag mac", 32)),
        };
        return this.derivedEtagKeys;
    }
    private derivedEtagKeys?: { enc: Buffer; mac: Buffer };

    /** A new object's id, data key (wrapped by transit) and keys, and the backend metadata that carries them. */
    private async newObject(bucket: string, key: string, kind: "s" | "m", meta: SealedMeta) {
        const { objectId, dek } = await this.newKeys.take();
        const keys = deriveObjectKeys(dek.plaintext, objectId);
        const metadata: Record<string, string> = {
            pce: `1;${SEGMENT_LOG2};${kind}`,
            "pce-id": b64u(objectId),
            "pce-k": dek.wrapped,
            "pce-c": b64u(keys.commitment),
            "pce-b": b64u(nameBinding(keys, bucket, key)),
            "pce-m": sealMeta(keys, objectId, meta),
        };
        return { objectId, keys, metadata };
    }

    /**
     * A conditional write is one conditional backend call, atomic by construction: `ifNoneMatch: "*"` only
     * if the key is free, `ifMatch` (a client ETag) only if the object is still that version.
     */
    async put(
        bucket: string,
        key: string,
        body: Readable,
        info: SealedMeta,
        conditions: { ifNoneMatch?: "*"; ifMatch?: string } = {},
    ): Promise<string> {
        const ifMatch = conditions.ifMatch === undefined ? undefined : this.backendEtag(conditions.ifMatch);
        if (conditions.ifMatch !== undefined && ifMatch === undefined) {
            throw new S3Error("PreconditionFailed", "If-Match names no version of this object");
        }
        const { objectId, keys, metadata } = await this.newObject(bucket, key, "s", info);
        const sealed = body.pipe(
            new SealStream({ key: keys.data, objectId, part: 0, segmentSize: DEFAULT_SEGMENT_SIZE }),
        );
        body.on("error", (err) => sealed.destroy(err));
        const res = await this.backend.send(
            new PutObjectCommand({
                Bucket: bucket,
                Key: this.stored(bucket, key),
                Body: sealed,
                ContentLength: ciphertextLength(info.length, DEFAULT_SEGMENT_SIZE),
                ContentType: "application/octet-stream",
                IfNoneMatch: conditions.ifNoneMatch,
                IfMatch: ifMatch,
                Metadata: metadata,
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
        let table: PartEntry[] | undefined;
        if (m.pce.endsWith(";m")) {
            const sidecar = await this.backend
                .send(new GetObjectCommand({ Bucket: bucket, Key: tableKey(objectId) }))
                .catch((err: unknown) => {
                    // The object is there; a missing table is damage at the backend, not a missing object.
                    if ((err as { name?: string }).name !== "NoSuchKey") throw err;
                    throw new S3Error("InternalError", "the object's part table is missing");
                });
            table = openTable(keys.meta, objectId, Buffer.from(await sidecar.Body!.transformToByteArray()));
            meta.length = table.reduce((sum, p) => sum + p.plainLength, 0);
            if (table.reduce((sum, p) => sum + partCipherLength(p.plainLength, segmentSize), 0) !== size) {
                throw new S3Error("InternalError", "the object's size does not match its part table");
            }
        } else if (plaintextLength(size, segmentSize) !== meta.length) {
            throw new S3Error("InternalError", "the object's size does not match its sealed length");
        }
        return { keys, objectId, segmentSize, meta, table };
    }

    async head(bucket: string, key: string): Promise<ObjectInfo> {
        const res = await this.backend.send(new HeadObjectCommand({ Bucket: bucket, Key: this.stored(bucket, key) }));
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
            const res = await this.backend.send(
                new GetObjectCommand({ Bucket: bucket, Key: this.stored(bucket, key) }),
            );
            const source = res.Body as Readable;
            try {
                const opened = await this.open(bucket, key, res.Metadata, res.ContentLength ?? 0);
                const info = { ...opened.meta, lastModified: res.LastModified, etag: this.clientEtag(res.ETag) };
                const body = opened.table
                    ? ReadableStream.from(
                          openParts(source, opened.keys.data, opened.objectId, opened.table, opened.segmentSize),
                      )
                    : this.decrypt(source, opened, wholeObject(info.length, opened.segmentSize));
                return { info, body };
            } catch (err) {
                source.destroy();
                throw err;
            }
        }
        const head = await this.backend.send(new HeadObjectCommand({ Bucket: bucket, Key: this.stored(bucket, key) }));
        const opened = await this.open(bucket, key, head.Metadata, head.ContentLength ?? 0);
        const info = { ...opened.meta, lastModified: head.LastModified, etag: this.clientEtag(head.ETag) };
        const wanted = range(info.length);
        // One ranged backend GET of whole segments; the ETag condition makes the body the one whose metadata
        // was just checked.
        const fetch = (cipherStart?: number, cipherEnd?: number) =>
            this.backend.send(
                new GetObjectCommand({
                    Bucket: bucket,
                    Key: this.stored(bucket, key),
                    Range: cipherEnd === undefined ? undefined : `bytes=${cipherStart}-${cipherEnd}`,
                    IfMatch: head.ETag,
                }),
            );
        if (opened.table) {
            const span = wanted
                ? planPartsRange(opened.table, opened.segmentSize, wanted.start, wanted.end)
                : undefined;
            const res = await fetch(span?.cipherStart, span?.cipherEnd);
            const plain = openParts(
                res.Body as Readable,
                opened.keys.data,
                opened.objectId,
                opened.table,
                opened.segmentSize,
                span,
            );
            return { info, body: ReadableStream.from(plain), range: wanted };
        }
        const plan = wanted
            ? planRange(wanted.start, wanted.end, info.length, opened.segmentSize)
            : { ...wholeObject(info.length, opened.segmentSize), cipherStart: undefined, cipherEnd: undefined };
        const res = await fetch(plan.cipherStart, plan.cipherEnd);
        return { info, body: this.decrypt(res.Body as Readable, opened, plan), range: wanted };
    }

    private decrypt(
        source: Readable,
        opened: { keys: ObjectKeys; objectId: Buffer; segmentSize: number },
        plan: OpenRange,
    ) {
        const s = { key: opened.keys.data, objectId: opened.objectId, part: 0, segmentSize: opened.segmentSize };
        // pipeline() also fails the plaintext when the source failed before this point (while the key was unwrapped).
        return pipeline(source, new OpenStream(s, plan), () => {});
    }

    /**
     * The plaintext size to list for a backend entry. Single-PUT sizes follow from the ciphertext size;
     * multipart objects (their backend ETag has a part count, or their size fits no single PUT) need their
     * part table, read through a HEAD.
     */
    async listedSize(bucket: string, key: string, size: number, backendEtag: string | undefined): Promise<number> {
        const single = plaintextLength(size, DEFAULT_SEGMENT_SIZE);
        if (single !== undefined && !backendEtag?.includes("-")) return single;
        return (await this.head(bucket, key)).length;
    }

    private readonly uploads = new Map<string, { objectId: Buffer; keys: ObjectKeys }>();

    /** The keys of an upload in progress, from its sidecar (the backend does not return an upload's metadata). */
    private async uploadKeys(bucket: string, uploadId: string) {
        const known = this.uploads.get(uploadId);
        if (known) return known;
        const res = await this.backend.send(new GetObjectCommand({ Bucket: bucket, Key: uploadKey(uploadId) }));
        const sidecar = JSON.parse(await res.Body!.transformToString()) as { id: string; k: string };
        const objectId = Buffer.from(sidecar.id, "base64url");
        const keys = deriveObjectKeys(await this.transit.unwrap(sidecar.k, objectId), objectId);
        this.uploads.set(uploadId, { objectId, keys });
        return { objectId, keys };
    }

    async createUpload(bucket: string, key: string, info: Omit<SealedMeta, "length">): Promise<string> {
        // The length is known only at completion; the part table carries it.
        const { objectId, keys, metadata } = await this.newObject(bucket, key, "m", { ...info, length: -1 });
        const res = await this.backend.send(
            new CreateMultipartUploadCommand({
                Bucket: bucket,
                Key: this.stored(bucket, key),
                ContentType: "application/octet-stream",
                Metadata: metadata,
            }),
        );
        const uploadId = res.UploadId ?? "";
        await this.backend.send(
            new PutObjectCommand({
                Bucket: bucket,
                Key: uploadKey(uploadId),
                Body: JSON.stringify({ id: metadata["pce-id"], k: metadata["pce-k"] }),
            }),
        );
        this.uploads.set(uploadId, { objectId, keys });
        return uploadId;
    }

    async uploadPart(bucket: string, key: string, uploadId: string, part: number, body: Readable, length: number) {
        const { objectId, keys } = await this.uploadKeys(bucket, uploadId);
        const salt = randomBytes(16);
        const s = { key: partKey(keys.data, objectId, part, salt), objectId, part, segmentSize: DEFAULT_SEGMENT_SIZE };
        const sealed = body.pipe(new SealStream(s));
        body.on("error", (err) => sealed.destroy(err));
        const res = await this.backend.send(
            new UploadPartCommand({
                Bucket: bucket,
                Key: this.stored(bucket, key),
                UploadId: uploadId,
                PartNumber: part,
                Body: ReadableStream.from(withHeader(partHeader(salt), sealed)),
                ContentLength: partCipherLength(length, DEFAULT_SEGMENT_SIZE),
            }),
        );
        const etag = partEtag(this.etagKey, uploadId, { part, salt, plainLength: length }, res.ETag ?? "");
        // ListParts learns only backend ETags from the backend; this record turns them back into ours.
        await this.backend.send(
            new PutObjectCommand({ Bucket: bucket, Key: partRecordKey(uploadId, part, res.ETag ?? ""), Body: etag }),
        );
        return etag;
    }

    async listParts(bucket: string, key: string, uploadId: string, marker?: number, maxParts?: number) {
        const res = await this.backend.send(
            new ListPartsCommand({
                Bucket: bucket,
                Key: this.stored(bucket, key),
                UploadId: uploadId,
                PartNumberMarker: marker?.toString(),
                MaxParts: maxParts,
            }),
        );
        const parts = await Promise.all(
            (res.Parts ?? []).map(async (p) => {
                const record = await this.backend.send(
                    new GetObjectCommand({
                        Bucket: bucket,
                        Key: partRecordKey(uploadId, p.PartNumber ?? 0, p.ETag ?? ""),
                    }),
                );
                const etag = await record.Body!.transformToString();
                const { entry } = readPartEtag(this.etagKey, uploadId, p.PartNumber ?? 0, etag);
                return { part: entry.part, etag, size: entry.plainLength, lastModified: p.LastModified };
            }),
        );
        return { parts, truncated: res.IsTruncated ?? false, nextMarker: res.NextPartNumberMarker };
    }

    /** Removes an upload's own records once it is completed or aborted. */
    private async forgetUpload(bucket: string, uploadId: string): Promise<void> {
        const records = await this.backend.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: partRecordPrefix(uploadId) }),
        );
        const keys = [uploadKey(uploadId), ...(records.Contents ?? []).map((o) => o.Key ?? "")];
        await this.backend.send(
            new DeleteObjectsCommand({
                Bucket: bucket,
                Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
            }),
        );
        this.uploads.delete(uploadId);
    }

    async completeUpload(bucket: string, key: string, uploadId: string, parts: { part: number; etag: string }[]) {
        const { objectId, keys } = await this.uploadKeys(bucket, uploadId);
        const decoded = parts.map((p) => {
            try {
                return readPartEtag(this.etagKey, uploadId, p.part, p.etag);
            } catch {
                throw new S3Error("InvalidPart", `part ${p.part} has an ETag this upload did not give`);
            }
        });
        if (decoded.some((d, i) => i > 0 && d.entry.part <= decoded[i - 1].entry.part)) {
            throw new S3Error("InvalidPartOrder", "parts must be listed in ascending order");
        }
        await this.backend.send(
            new PutObjectCommand({
                Bucket: bucket,
                Key: tableKey(objectId),
                Body: sealTable(
                    keys.meta,
                    objectId,
                    decoded.map((d) => d.entry),
                ),
            }),
        );
        const res = await this.backend.send(
            new CompleteMultipartUploadCommand({
                Bucket: bucket,
                Key: this.stored(bucket, key),
                UploadId: uploadId,
                MultipartUpload: { Parts: decoded.map((d) => ({ PartNumber: d.entry.part, ETag: d.backendEtag })) },
            }),
        );
        await this.forgetUpload(bucket, uploadId);
        return this.clientEtag(res.ETag);
    }

    async abortUpload(bucket: string, key: string, uploadId: string): Promise<void> {
        await this.backend.send(
            new AbortMultipartUploadCommand({ Bucket: bucket, Key: this.stored(bucket, key), UploadId: uploadId }),
        );
        await this.forgetUpload(bucket, uploadId);
    }

    async delete(bucket: string, key: string): Promise<void> {
        await this.backend.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.stored(bucket, key) }));
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
        const head = await this.backend.send(
            new HeadObjectCommand({ Bucket: source.bucket, Key: this.stored(source.bucket, source.key) }),
        );
        const opened = await this.open(source.bucket, source.key, head.Metadata, head.ContentLength ?? 0);
        const meta = replaceMetadata ? { length: opened.meta.length, ...replaceMetadata } : opened.meta;
        if (opened.table && target.bucket !== source.bucket) {
            // A multipart object's reads look for its part table in its own bucket; the table goes first.
            await this.backend.send(
                new CopyObjectCommand({
                    Bucket: target.bucket,
                    Key: tableKey(opened.objectId),
                    CopySource: `${source.bucket}/${encodeURIComponent(tableKey(opened.objectId))}`,
                }),
            );
        }
        const res = await this.backend.send(
            new CopyObjectCommand({
                Bucket: target.bucket,
                Key: this.stored(target.bucket, target.key),
                CopySource: `${source.bucket}/${encodeURIComponent(this.stored(source.bucket, source.key))}`,
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

const uploadKey = (uploadId: string) => `.pce/mpu/${uploadId}`;
const tableKey = (objectId: Buffer) => `.pce/mpt/${b64u(objectId)}`;
const partRecordPrefix = (uploadId: string) => `.pce/mpu/${uploadId}.parts/`;
const partRecordKey = (uploadId: string, part: number, backendEtag: string) =>
    `${partRecordPrefix(uploadId)}${part}/${Buffer.from(backendEtag).toString("hex")}`;

async function* withHeader(header: Buffer, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    yield header;
    yield* body;
}
