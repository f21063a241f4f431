// Encrypted objects on the backend: what a PUT writes and what a GET or HEAD checks before any byte is sent.
import {
    createCipheriv,
    createDecipheriv,
    createHash,
    createHmac,
    hkdfSync,
    randomBytes,
    timingSafeEqual,
} from "node:crypto";
import {
    AbortMultipartUploadCommand,
    CompleteMultipartUploadCommand,
    CopyObjectCommand,
    CreateMultipartUploadCommand,
    DeleteObjectCommand,
    DeleteObjectsCommand,
    GetObjectCommand,
    ListObjectsV2Command,
    ListPartsCommand,
    PutObjectCommand,
    type S3Client,
    UploadPartCommand,
} from "@aws-sdk/client-s3";
import { type Readable, Readable as ReadableStream, Transform, type TransformCallback } from "node:stream";
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
import { BackendCalls } from "./backend-calls";
import { S3Error } from "./errors";
import { MAX_BACKEND_KEY_BYTES, type NameCipher } from "./format/names";
import { commitmentMatches, deriveObjectKeys, nameBinding, type ObjectKeys, OBJECT_ID_BYTES } from "./format/keys";
import {
    ciphertextLength,
    DEFAULT_SEGMENT_SIZE,
    type OpenRange,
    planRange,
    plaintextLength,
    sealAll,
    SealStream,
    SegmentOpener,
    wholeObject,
} from "./format/segments";
import type { PlainBody } from "./send-plaintext";
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

/**
 * A single PUT's body up to this size is received whole before it is sealed and sent, so its MD5 (its ETag)
 * is known when the backend PUT starts; a larger one streams, and its MD5 is added after (see `put`).
 */
export const BUFFERED_PUT_BYTES = 1024 * 1024;
/**
 * Up to this size a streamed single PUT without Content-MD5 gets its MD5 ETag by a backend self-copy, which
 * MinIO measured as a rewrite of the data (its CPU per GiB doubled); larger ones keep the opaque ETag, as S3
 * gives a non-MD5 ETag for SSE-KMS objects. 16 MiB covers s3cmd's single PUTs (multipart from 15 MiB) and the
 * AWS CLI's (from 8 MiB); rclone sends Content-MD5.
 */
export const COPIED_MD5_MAX_BYTES = 16 * 1024 * 1024;
/** Client ETags of listed objects, by bucket, key and backend ETag (a backend ETag names one version). */
const LISTED_ETAGS_MAX = 100_000;

/**
 * Hashes a single PUT's plaintext as it streams; given the client's Content-MD5, fails the stream at its end
 * if they differ, before the sealing stage after it writes the final segment, so nothing is stored.
 */
class Md5Stage extends Transform {
    readonly hash = createHash("md5");
    digest?: Buffer;
    constructor(private readonly expected?: Buffer) {
        super();
    }
    override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback) {
        this.hash.update(chunk);
        done(null, chunk);
    }
    override _flush(done: TransformCallback) {
        this.digest = this.hash.digest();
        if (this.expected && !this.expected.equals(this.digest)) {
            done(new S3Error("BadDigest", "the body does not match Content-MD5"));
        } else {
            done();
        }
    }
}

/** A Content-MD5 header as 16 bytes; a malformed one is refused as S3 does. */
export function contentMd5(header: string | undefined): Buffer | undefined {
    if (header === undefined) return undefined;
    const md5 = Buffer.from(header.trim(), "base64");
    if (md5.length !== 16 || md5.toString("base64") !== header.trim()) {
        throw new S3Error("InvalidDigest", "Content-MD5 is not a base64 MD5");
    }
    return md5;
}

async function readAll(body: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/** A plaintext authenticated as it was read (openParts, for multipart objects): sent on as it comes. */
function openedStream(plain: AsyncIterable<Buffer>): PlainBody {
    return {
        source: ReadableStream.from(plain),
        opener: { push: (chunk) => [chunk], done: false, onLast: false, end: () => {} },
    };
}

const quoted = (etag: string) => `"${etag.trim().replace(/^"|"$/g, "")}"`;

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
    ) {
        this.calls = new BackendCalls(backend);
    }

    /** GETs, HEADs and whole-body PUTs, without the SDK's cost per call. */
    private readonly calls: BackendCalls;

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
        // A multipart object's ETag ends in `-<parts>`, as S3's does, so clients that check MD5 ETags
        // (s3cmd) know it for one that is not an MD5.
        const parts = /-(\d+)"?$/.exec(backendEtag ?? "")?.[1];
        const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final()]).toString("base64url");
        return `"${sealed}${parts ? `-${parts}` : ""}"`;
    }

    /** The backend ETag behind a client ETag; undefined for an ETag this service did not give. */
    backendEtag(clientEtag: string): string | undefined {
        const text = clientEtag.trim().replace(/^"|"$/g, "");
        const whole = this.openEtag(text);
        if (whole !== undefined || !/-\d+$/.test(text)) return whole;
        return this.openEtag(text.replace(/-\d+$/, ""));
    }

    private openEtag(text: string): string | undefined {
        const raw = Buffer.from(text, "base64url");
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
     * A conditional write ends in one conditional backend call, atomic by construction: `ifNoneMatch: "*"` only
     * if the key is free, `ifMatch` only if the object is still that version. An MD5 ETag (what objects
     * written since format revision 2 show) is checked against the object's current version through a HEAD
     * first; the PUT is then conditional on that version's backend ETag, so it stays exact.
     *
     * The client's ETag is the MD5 of the plaintext, as S3 gives for a single PUT, sealed in the object's
     * metadata (`pce-e`): known before the backend PUT when the client sent Content-MD5 (checked as the body
     * streams; a mismatch stores nothing) or the body is at most BUFFERED_PUT_BYTES (received whole, then
     * sealed); otherwise the body streams, and once it is stored the backend copies the object onto itself (up to COPIED_MD5_MAX_BYTES; a larger one keeps the opaque ETag)
     * with `pce-e` added, if it is still that version.
     */
    async put(
        bucket: string,
        key: string,
        body: Readable,
        info: SealedMeta,
        conditions: { ifNoneMatch?: "*"; ifMatch?: string } = {},
        md5?: Buffer,
    ): Promise<string> {
        const ifMatch = await this.writeCondition(bucket, key, conditions.ifMatch);
        const { objectId, keys, metadata } = await this.newObject(bucket, key, "s", info);
        const stream = { key: keys.data, objectId, part: 0, segmentSize: DEFAULT_SEGMENT_SIZE };
        let payload: Readable | Buffer;
        let hashed: Md5Stage | undefined;
        let failure: unknown;
        const abort = new AbortController();
        if (info.length <= BUFFERED_PUT_BYTES) {
            const plain = await readAll(body);
            const digest = createHash("md5").update(plain).digest();
            if (md5 && !md5.equals(digest)) throw new S3Error("BadDigest", "the body does not match Content-MD5");
            md5 = digest;
            payload = Buffer.concat(sealAll(stream, plain));
        } else {
            hashed = new Md5Stage(md5);
            const sealed = body.pipe(hashed).pipe(new SealStream(stream));
            body.on("error", (err) => hashed!.destroy(err));
            hashed.on("error", (err) => {
                failure ??= err;
                sealed.destroy(err);
                // A backend that waits for the rest of the declared length would wait forever.
                abort.abort(err);
            });
            sealed.on("error", () => {}); // the backend PUT fails with it, and `failure` says why
            payload = sealed;
        }
        if (md5) metadata["pce-e"] = this.sealMd5(objectId, bucket, key, md5);
        const stored = this.stored(bucket, key);
        const input = {
            Bucket: bucket,
            Key: stored,
            ContentType: "application/octet-stream",
            IfNoneMatch: conditions.ifNoneMatch,
            IfMatch: ifMatch,
            Metadata: metadata,
        };
        const res = Buffer.isBuffer(payload)
            ? await this.calls.putObject({ ...input, Body: payload })
            : await this.backend
                  .send(
                      new PutObjectCommand({
                          ...input,
                          Body: payload,
                          ContentLength: ciphertextLength(info.length, DEFAULT_SEGMENT_SIZE),
                      }),
                      { abortSignal: abort.signal },
                  )
                  .catch((err: unknown) => {
                      throw failure ?? err;
                  });
        if (md5 === undefined && info.length > COPIED_MD5_MAX_BYTES) {
            return this.remember(bucket, stored, res.ETag, this.clientEtag(res.ETag));
        }
        if (md5 === undefined) {
            const digest = hashed!.digest!;
            try {
                await this.backend.send(
                    new CopyObjectCommand({
                        Bucket: bucket,
                        Key: stored,
                        CopySource: `${bucket}/${encodeURIComponent(stored)}`,
                        CopySourceIfMatch: res.ETag,
                        MetadataDirective: "REPLACE",
                        ContentType: "application/octet-stream",
                        Metadata: { ...metadata, "pce-e": this.sealMd5(objectId, bucket, key, digest) },
                    }),
                );
            } catch {
                // Replaced meanwhile, or the copy failed: the object stored reads with the ETag given here.
                return this.remember(bucket, stored, res.ETag, this.clientEtag(res.ETag));
            }
            md5 = digest;
        }
        return this.remember(bucket, stored, res.ETag, `"${md5.toString("hex")}"`);
    }

    /** The backend ETag a PUT's If-Match turns into; PreconditionFailed if it names no current version. */
    private async writeCondition(bucket: string, key: string, ifMatch: string | undefined) {
        if (ifMatch === undefined) return undefined;
        const opaque = this.backendEtag(ifMatch);
        if (opaque !== undefined) return opaque;
        const head = await this.calls
            .headObject({ Bucket: bucket, Key: this.stored(bucket, key) })
            .catch((err: unknown) => {
                if ((err as { name?: string }).name !== "NotFound") throw err;
                return undefined;
            });
        if (!head || this.etagOf(bucket, key, head.Metadata, head.ETag) !== quoted(ifMatch)) {
            throw new S3Error("PreconditionFailed", "If-Match names no version of this object");
        }
        return head.ETag;
    }

    /** The key that seals single-PUT MD5s (`pce-e`), derived from the deployment's ETag key. */
    private get md5Key(): Buffer {
        this.derivedMd5Key ??= Buffer.from(hkdfSync("sha256", this.etagKey, Buffer.alloc(0), "pce1 etag md5", 32));
        return this.derivedMd5Key;
    }
    private derivedMd5Key?: Buffer;

    /** AES-256-GCM of the MD5, bound to the object id and the name it is listed under. */
    private md5Aad(objectId: Buffer, bucket: string, key: string): Buffer {
        const name = Buffer.from(`${bucket}/${key}`, "utf8");
        return Buffer.concat([Buffer.from("pce1 etag"), objectId, name]);
    }

    private sealMd5(objectId: Buffer, bucket: string, key: string, md5: Buffer): string {
        const nonce = randomBytes(12);
        const cipher = createCipheriv("aes-256-gcm", this.md5Key, nonce);
        cipher.setAAD(this.md5Aad(objectId, bucket, key));
        return b64u(Buffer.concat([nonce, cipher.update(md5), cipher.final(), cipher.getAuthTag()]));
    }

    /**
     * The client ETag of a stored version: the MD5 sealed in `pce-e` for a single PUT since format revision 2,
     * otherwise (older objects, multipart uploads) the backend ETag encrypted.
     */
    private etagOf(bucket: string, key: string, m: Record<string, string> | undefined, backendEtag?: string) {
        const sealed = m?.["pce-e"];
        if (!sealed) return this.clientEtag(backendEtag);
        const raw = Buffer.from(sealed, "base64url");
        try {
            const decipher = createDecipheriv("aes-256-gcm", this.md5Key, raw.subarray(0, 12));
            decipher.setAAD(this.md5Aad(Buffer.from(m["pce-id"] ?? "", "base64url"), bucket, key));
            decipher.setAuthTag(raw.subarray(raw.length - 16));
            const md5 = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
            return `"${md5.toString("hex")}"`;
        } catch {
            // Not sealed under this deployment's ETag key (the key was changed, or the backend moved it from
            // another object): the ETag is then the opaque one, as for an object without it. The content is
            // authenticated on its own; the backend can make a client see no MD5, never a wrong one.
            return this.clientEtag(backendEtag);
        }
    }

    private readonly listedEtags = new Map<string, string>();

    /** Keeps a version's client ETag for listings; returns it. */
    private remember(bucket: string, stored: string, backendEtag: string | undefined, etag: string): string {
        if (backendEtag === undefined) return etag;
        if (this.listedEtags.size >= LISTED_ETAGS_MAX) {
            this.listedEtags.delete(this.listedEtags.keys().next().value!);
        }
        this.listedEtags.set(`${bucket}\n${stored}\n${backendEtag}`, etag);
        return etag;
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

    /** The client ETag of the version a backend HEAD or GET answered with, kept for listings. */
    private versionEtag(bucket: string, key: string, res: { Metadata?: Record<string, string>; ETag?: string }) {
        return this.remember(
            bucket,
            this.stored(bucket, key),
            res.ETag,
            this.etagOf(bucket, key, res.Metadata, res.ETag),
        );
    }

    async head(bucket: string, key: string): Promise<ObjectInfo> {
        const res = await this.calls.headObject({ Bucket: bucket, Key: this.stored(bucket, key) });
        const { meta } = await this.open(bucket, key, res.Metadata, res.ContentLength ?? 0);
        return { ...meta, lastModified: res.LastModified, etag: this.versionEtag(bucket, key, res) };
    }

    /**
     * The object's info and a stream of its plaintext: all of it in one backend GET, or, given a range,
     * bytes start..end (inclusive) fetched as whole segments after a HEAD tells the object's length.
     */
    async get(
        bucket: string,
        key: string,
        range?: (length: number) => { start: number; end: number } | undefined,
    ): Promise<{ info: ObjectInfo; body: PlainBody; range?: { start: number; end: number } }> {
        if (!range) {
            const res = await this.calls.getObject({ Bucket: bucket, Key: this.stored(bucket, key) });
            const source = res.Body;
            try {
                const opened = await this.open(bucket, key, res.Metadata, res.ContentLength ?? 0);
                const info = {
                    ...opened.meta,
                    lastModified: res.LastModified,
                    etag: this.versionEtag(bucket, key, res),
                };
                const body = opened.table
                    ? openedStream(
                          openParts(source, opened.keys.data, opened.objectId, opened.table, opened.segmentSize),
                      )
                    : this.opening(source, opened, wholeObject(info.length, opened.segmentSize));
                return { info, body };
            } catch (err) {
                source.destroy();
                throw err;
            }
        }
        const head = await this.calls.headObject({ Bucket: bucket, Key: this.stored(bucket, key) });
        const opened = await this.open(bucket, key, head.Metadata, head.ContentLength ?? 0);
        const info = { ...opened.meta, lastModified: head.LastModified, etag: this.versionEtag(bucket, key, head) };
        const wanted = range(info.length);
        // One ranged backend GET of whole segments; the ETag condition makes the body the one whose metadata
        // was just checked.
        const fetch = (cipherStart?: number, cipherEnd?: number) =>
            this.calls.getObject({
                Bucket: bucket,
                Key: this.stored(bucket, key),
                Range: cipherEnd === undefined ? undefined : `bytes=${cipherStart}-${cipherEnd}`,
                IfMatch: head.ETag,
            });
        if (opened.table) {
            const span = wanted
                ? planPartsRange(opened.table, opened.segmentSize, wanted.start, wanted.end)
                : undefined;
            const res = await fetch(span?.cipherStart, span?.cipherEnd);
            const plain = openParts(
                res.Body,
                opened.keys.data,
                opened.objectId,
                opened.table,
                opened.segmentSize,
                span,
            );
            return { info, body: openedStream(plain), range: wanted };
        }
        const plan = wanted
            ? planRange(wanted.start, wanted.end, info.length, opened.segmentSize)
            : { ...wholeObject(info.length, opened.segmentSize), cipherStart: undefined, cipherEnd: undefined };
        const res = await fetch(plan.cipherStart, plan.cipherEnd);
        return { info, body: this.opening(res.Body, opened, plan), range: wanted };
    }

    private opening(
        source: Readable,
        opened: { keys: ObjectKeys; objectId: Buffer; segmentSize: number },
        plan: OpenRange,
    ): PlainBody {
        const s = { key: opened.keys.data, objectId: opened.objectId, part: 0, segmentSize: opened.segmentSize };
        return { source, opener: new SegmentOpener(s, plan) };
    }

    /**
     * The plaintext size and client ETag to list for a backend entry. A single PUT's size follows from the
     * ciphertext size; its ETag (sealed in its metadata) is remembered from the service's own PUTs, GETs and
     * HEADs, else read with a backend HEAD (no Vault call). Multipart objects (their backend ETag has a part
     * count, or their size fits no single PUT) need their part table, read through a HEAD.
     */
    async listed(
        bucket: string,
        key: string,
        size: number,
        backendEtag: string | undefined,
    ): Promise<{ size: number; etag: string }> {
        const single = plaintextLength(size, DEFAULT_SEGMENT_SIZE);
        if (single !== undefined && !backendEtag?.includes("-")) {
            const stored = this.stored(bucket, key);
            const known = this.listedEtags.get(`${bucket}\n${stored}\n${backendEtag}`);
            if (known) return { size: single, etag: known };
            const head = await this.calls.headObject({ Bucket: bucket, Key: stored }).catch((err: unknown) => {
                if ((err as { name?: string }).name !== "NotFound") throw err;
                return undefined; // deleted since it was listed
            });
            if (!head) return { size: single, etag: this.clientEtag(backendEtag) };
            const etag = this.remember(bucket, stored, head.ETag, this.etagOf(bucket, key, head.Metadata, head.ETag));
            return { size: plaintextLength(head.ContentLength ?? 0, DEFAULT_SEGMENT_SIZE) ?? single, etag };
        }
        const info = await this.head(bucket, key);
        return { size: info.length, etag: info.etag };
    }

    /** Open uploads' keys, and the parts this instance received: client ETag (MD5) and the part's token. */
    private readonly uploads = new Map<
        string,
        { objectId: Buffer; keys: ObjectKeys; parts: Map<number, { etag: string; token: string }> }
    >();

    /** The keys of an upload in progress, from its sidecar (the backend does not return an upload's metadata). */
    private async uploadKeys(bucket: string, uploadId: string) {
        const known = this.uploads.get(uploadId);
        if (known) return known;
        const res = await this.backend.send(new GetObjectCommand({ Bucket: bucket, Key: uploadKey(uploadId) }));
        const sidecar = JSON.parse(await res.Body!.transformToString()) as { id: string; k: string };
        const objectId = Buffer.from(sidecar.id, "base64url");
        const keys = deriveObjectKeys(await this.transit.unwrap(sidecar.k, objectId), objectId);
        const upload = { objectId, keys, parts: new Map<number, { etag: string; token: string }>() };
        this.uploads.set(uploadId, upload);
        return upload;
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
        this.uploads.set(uploadId, { objectId, keys, parts: new Map() });
        return uploadId;
    }

    /**
     * A part's client ETag is the MD5 of its plaintext, as S3 gives (clients such as s3cmd check it). The part's
     * token (its backend ETag, salt and plaintext length, MACed: what completion needs) and the MD5, sealed, go
     * in the part's record; this instance also keeps them in memory for the completion.
     */
    async uploadPart(
        bucket: string,
        key: string,
        uploadId: string,
        part: number,
        body: Readable,
        length: number,
        md5?: Buffer,
    ) {
        const upload = await this.uploadKeys(bucket, uploadId);
        const { objectId, keys } = upload;
        const salt = randomBytes(16);
        const s = { key: partKey(keys.data, objectId, part, salt), objectId, part, segmentSize: DEFAULT_SEGMENT_SIZE };
        const hashed = new Md5Stage(md5);
        const sealed = body.pipe(hashed).pipe(new SealStream(s));
        const abort = new AbortController();
        let failure: unknown;
        body.on("error", (err) => hashed.destroy(err));
        hashed.on("error", (err) => {
            failure ??= err;
            sealed.destroy(err);
            abort.abort(err);
        });
        sealed.on("error", () => {});
        const framed = ReadableStream.from(withHeader(partHeader(salt), sealed));
        framed.on("error", () => {}); // the backend call fails with it, and `failure` says why
        const res = await this.backend
            .send(
                new UploadPartCommand({
                    Bucket: bucket,
                    Key: this.stored(bucket, key),
                    UploadId: uploadId,
                    PartNumber: part,
                    Body: framed,
                    ContentLength: partCipherLength(length, DEFAULT_SEGMENT_SIZE),
                }),
                { abortSignal: abort.signal },
            )
            .catch((err: unknown) => {
                throw failure ?? err;
            });
        const token = partEtag(this.etagKey, uploadId, { part, salt, plainLength: length }, res.ETag ?? "");
        const etag = `"${hashed.digest!.toString("hex")}"`;
        const sealedMd5 = this.sealMd5(objectId, bucket, partName(key, uploadId, part), hashed.digest!);
        // ListParts learns only backend ETags from the backend; this record turns them back into ours.
        await this.backend.send(
            new PutObjectCommand({
                Bucket: bucket,
                Key: partRecordKey(uploadId, part, res.ETag ?? ""),
                Body: `${token}\n${sealedMd5}`,
            }),
        );
        upload.parts.set(part, { etag, token });
        return etag;
    }

    /** A part record's token and client ETag (records written before part MD5s hold the token alone). */
    private openPartRecord(
        bucket: string,
        key: string,
        uploadId: string,
        part: number,
        objectId: Buffer,
        record: string,
    ) {
        const [token, sealedMd5] = record.split("\n");
        if (!sealedMd5) return { token, etag: token };
        const etag = this.etagOf(bucket, partName(key, uploadId, part), {
            "pce-e": sealedMd5,
            "pce-id": b64u(objectId),
        });
        return { token, etag };
    }

    async listParts(bucket: string, key: string, uploadId: string, marker?: number, maxParts?: number) {
        const { objectId } = await this.uploadKeys(bucket, uploadId);
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
                const record = await this.partRecord(bucket, key, uploadId, p.PartNumber ?? 0, p.ETag ?? "", objectId);
                const { entry } = readPartEtag(this.etagKey, uploadId, p.PartNumber ?? 0, record.token);
                return { part: entry.part, etag: record.etag, size: entry.plainLength, lastModified: p.LastModified };
            }),
        );
        return { parts, truncated: res.IsTruncated ?? false, nextMarker: res.NextPartNumberMarker };
    }

    private async partRecord(
        bucket: string,
        key: string,
        uploadId: string,
        part: number,
        backendEtag: string,
        objectId: Buffer,
    ) {
        const record = await this.backend.send(
            new GetObjectCommand({ Bucket: bucket, Key: partRecordKey(uploadId, part, backendEtag) }),
        );
        return this.openPartRecord(bucket, key, uploadId, part, objectId, await record.Body!.transformToString());
    }

    /**
     * The tokens of the parts a CompleteMultipartUpload names by client ETag: from memory for the parts this
     * instance received, otherwise from the backend's current part list and the parts' records. A part whose
     * current attempt has another ETag is not found.
     */
    private async partTokens(bucket: string, key: string, uploadId: string, parts: { part: number; etag: string }[]) {
        const upload = await this.uploadKeys(bucket, uploadId);
        const tokens = new Map<number, string>();
        const missing: { part: number; etag: string }[] = [];
        for (const p of parts) {
            if (this.isToken(uploadId, p)) continue;
            const known = upload.parts.get(p.part);
            if (known && known.etag === quoted(p.etag)) tokens.set(p.part, known.token);
            else missing.push(p);
        }
        if (missing.length > 0) {
            const current = new Map<number, string>();
            let marker: string | undefined;
            do {
                const page = await this.backend.send(
                    new ListPartsCommand({
                        Bucket: bucket,
                        Key: this.stored(bucket, key),
                        UploadId: uploadId,
                        PartNumberMarker: marker,
                    }),
                );
                for (const p of page.Parts ?? []) current.set(p.PartNumber ?? 0, p.ETag ?? "");
                marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
            } while (marker);
            await Promise.all(
                missing.map(async (p) => {
                    const backendEtag = current.get(p.part);
                    if (backendEtag === undefined) return;
                    const record = await this.partRecord(bucket, key, uploadId, p.part, backendEtag, upload.objectId);
                    if (record.etag === quoted(p.etag)) tokens.set(p.part, record.token);
                }),
            );
        }
        return tokens;
    }

    private isToken(uploadId: string, p: { part: number; etag: string }): boolean {
        try {
            readPartEtag(this.etagKey, uploadId, p.part, p.etag);
            return true;
        } catch {
            return false;
        }
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
        const tokens = await this.partTokens(bucket, key, uploadId, parts);
        const decoded = parts.map((p) => {
            try {
                return readPartEtag(this.etagKey, uploadId, p.part, tokens.get(p.part) ?? p.etag);
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
            const heads = await Promise.all(keys.map((Key) => this.calls.headObject({ Bucket: bucket, Key })));
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
        /** The copy conditions (x-amz-copy-source-if-*), given the source's ETag and date; throws if one fails. */
        check?: (source: { etag: string; lastModified?: Date }) => void,
    ): Promise<{ etag: string; lastModified?: Date }> {
        const head = await this.calls.headObject({
            Bucket: source.bucket,
            Key: this.stored(source.bucket, source.key),
        });
        const opened = await this.open(source.bucket, source.key, head.Metadata, head.ContentLength ?? 0);
        const sourceEtag = this.versionEtag(source.bucket, source.key, head);
        // Checked against the version read; the backend copies only that version (CopySourceIfMatch below).
        check?.({ etag: sourceEtag, lastModified: head.LastModified });
        const md5 = head.Metadata?.["pce-e"] ? Buffer.from(sourceEtag.replace(/"/g, ""), "hex") : undefined;
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
        const metadata: Record<string, string> = {
            ...head.Metadata,
            "pce-b": b64u(nameBinding(opened.keys, target.bucket, target.key)),
            "pce-m": sealMeta(opened.keys, opened.objectId, meta),
        };
        // The MD5 is bound to the name too: sealed anew for the target.
        if (md5) metadata["pce-e"] = this.sealMd5(opened.objectId, target.bucket, target.key, md5);
        const stored = this.stored(target.bucket, target.key);
        const res = await this.backend.send(
            new CopyObjectCommand({
                Bucket: target.bucket,
                Key: stored,
                CopySource: `${source.bucket}/${encodeURIComponent(this.stored(source.bucket, source.key))}`,
                // The ciphertext copied is the one whose metadata was just checked.
                CopySourceIfMatch: head.ETag,
                MetadataDirective: "REPLACE",
                ContentType: "application/octet-stream",
                Metadata: metadata,
            }),
        );
        const backendEtag = res.CopyObjectResult?.ETag;
        const etag = this.remember(
            target.bucket,
            stored,
            backendEtag,
            this.etagOf(target.bucket, target.key, metadata, backendEtag),
        );
        return { etag, lastModified: res.CopyObjectResult?.LastModified };
    }
}

const uploadKey = (uploadId: string) => `.pce/mpu/${uploadId}`;
const tableKey = (objectId: Buffer) => `.pce/mpt/${b64u(objectId)}`;
const partRecordPrefix = (uploadId: string) => `.pce/mpu/${uploadId}.parts/`;
/** What a part's sealed MD5 is bound to, in place of an object's key. */
const partName = (key: string, uploadId: string, part: number) => `${key}\n${uploadId}\n${part}`;
const partRecordKey = (uploadId: string, part: number, backendEtag: string) =>
    `${partRecordPrefix(uploadId)}${part}/${Buffer.from(backendEtag).toString("hex")}`;

async function* withHeader(header: Buffer, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    yield header;
    yield* body;
}
