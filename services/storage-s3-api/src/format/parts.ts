// Multipart objects in the "pce1" format: each part is its own segment stream under its own key, preceded
// by a 32-byte header; an authenticated part table, written before the upload completes, fixes their order,
// count and sizes (see FORMAT.md).
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { ByteQueue, ciphertextLength, IntegrityError, openSealedSegment, segmentCount, TAG_BYTES } from "./segments";

export const PART_HEADER_BYTES = 32;
const PART_MAGIC = Buffer.from("pce1part", "ascii");

export interface PartEntry {
    part: number;
    salt: Buffer;
    plainLength: number;
}

/** A fresh key for every UploadPart attempt, so a retried part never reuses a (key, nonce) pair. */
export function partKey(dataKey: Buffer, objectId: Buffer, part: number, salt: Buffer): Buffer {
    const info = Buffer.alloc(11);
    info.write("pce1 part", 0, "ascii");
    info.writeUInt16BE(part, 9);
    return Buffer.from(hkdfSync("sha256", dataKey, Buffer.concat([objectId, salt]), info, 32));
}

export function partHeader(salt: Buffer): Buffer {
    return Buffer.concat([PART_MAGIC, salt, Buffer.alloc(8)]);
}

export function partCipherLength(plainLength: number, segmentSize: number): number {
    return PART_HEADER_BYTES + ciphertextLength(plainLength, segmentSize);
}

/**
 * The client's ETag for a part: opaque, and carrying what Complete needs (backend ETag, salt, length),
 * MACed so a client cannot make the table lie.
 */
export function partEtag(macKey: Buffer, uploadId: string, entry: PartEntry, backendEtag: string): string {
    const backend = Buffer.from(backendEtag.replace(/"/g, ""), "utf8");
    const body = Buffer.concat([Buffer.from([backend.length]), backend, entry.salt, u64(entry.plainLength)]);
    const mac = createHmac("sha256", macKey)
        .update(uploadId)
        .update(u16(entry.part))
        .update(body)
        .digest()
        .subarray(0, 16);
    return `"${Buffer.concat([body, mac]).toString("base64url")}"`;
}

export function readPartEtag(
    macKey: Buffer,
    uploadId: string,
    part: number,
    etag: string,
): { entry: PartEntry; backendEtag: string } {
    const raw = Buffer.from(etag.replace(/"/g, ""), "base64url");
    const n = raw[0] ?? 0;
    if (raw.length !== 1 + n + 16 + 8 + 16) throw new IntegrityError(`part ${part}: not an ETag this service gave`);
    const body = raw.subarray(0, raw.length - 16);
    const mac = createHmac("sha256", macKey).update(uploadId).update(u16(part)).update(body).digest().subarray(0, 16);
    if (!timingSafeEqual(mac, raw.subarray(raw.length - 16)))
        throw new IntegrityError(`part ${part}: ETag does not verify`);
    return {
        backendEtag: `"${body.subarray(1, 1 + n).toString("utf8")}"`,
        entry: {
            part,
            salt: Buffer.from(body.subarray(1 + n, 17 + n)),
            plainLength: Number(body.readBigUInt64BE(17 + n)),
        },
    };
}

/** The part table, sealed with the object's metadata key and bound to the object id. */
export function sealTable(metaKey: Buffer, objectId: Buffer, parts: PartEntry[]): Buffer {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", metaKey, nonce);
    cipher.setAAD(Buffer.concat([Buffer.from("pce1 mpt"), objectId]));
    const json = JSON.stringify(
        parts.map((p) => ({ part: p.part, salt: p.salt.toString("base64url"), length: p.plainLength })),
    );
    return Buffer.concat([nonce, cipher.update(json), cipher.final(), cipher.getAuthTag()]);
}

export function openTable(metaKey: Buffer, objectId: Buffer, sealed: Buffer): PartEntry[] {
    const decipher = createDecipheriv("aes-256-gcm", metaKey, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.concat([Buffer.from("pce1 mpt"), objectId]));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
        const json = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - TAG_BYTES)), decipher.final()]);
        return (JSON.parse(json.toString()) as { part: number; salt: string; length: number }[]).map((p) => ({
            part: p.part,
            salt: Buffer.from(p.salt, "base64url"),
            plainLength: p.length,
        }));
    } catch {
        throw new IntegrityError("the part table failed authentication");
    }
}

/** Reads exact byte counts from a stream of chunks, copying only what spans two of them. */
class ExactReader {
    private readonly queue = new ByteQueue();
    constructor(private readonly source: AsyncIterator<Buffer>) {}
    async read(n: number): Promise<Buffer> {
        while (this.queue.length < n) {
            const next = await this.source.next();
            if (next.done) throw new IntegrityError(`the object ends ${n - this.queue.length} bytes early`);
            this.queue.push(next.value);
        }
        return this.queue.takeJoined(n);
    }
    async atEnd(): Promise<boolean> {
        if (this.queue.length > 0) return false;
        const next = await this.source.next();
        if (next.done) return true;
        this.queue.push(next.value);
        return next.value.length === 0 && this.atEnd();
    }
    /** Stops the source (a stream is destroyed) when reading ends early. */
    async close(): Promise<void> {
        await this.source.return?.();
    }
}

export interface PartsRange {
    /** Ciphertext bytes to fetch from the backend, inclusive. */
    cipherStart: number;
    cipherEnd: number;
    start: number;
    end: number;
}

/** The ciphertext span that holds plaintext bytes start..end (inclusive) of a multipart object. */
export function planPartsRange(table: PartEntry[], segmentSize: number, start: number, end: number): PartsRange {
    let plainAt = 0;
    let cipherAt = 0;
    let cipherStart = -1;
    let cipherEnd = -1;
    for (const entry of table) {
        const plainEnd = plainAt + entry.plainLength - 1;
        if (entry.plainLength > 0 && start <= plainEnd && end >= plainAt) {
            const local = { start: Math.max(start, plainAt) - plainAt, end: Math.min(end, plainEnd) - plainAt };
            const sealed = segmentSize + TAG_BYTES;
            const first = Math.floor(local.start / segmentSize);
            const last = Math.floor(local.end / segmentSize);
            if (cipherStart < 0) cipherStart = cipherAt + PART_HEADER_BYTES + first * sealed;
            const lastPlain = Math.min(segmentSize, entry.plainLength - last * segmentSize);
            cipherEnd = cipherAt + PART_HEADER_BYTES + last * sealed + lastPlain + TAG_BYTES - 1;
        }
        plainAt += entry.plainLength;
        cipherAt += partCipherLength(entry.plainLength, segmentSize);
    }
    if (cipherStart < 0) throw new RangeError(`bytes ${start}-${end} are outside the object`);
    return { cipherStart, cipherEnd, start, end };
}

/**
 * Decrypts a multipart object, part after part, checking each part's header against the table. Given a
 * range (from planPartsRange), the source starts at its first needed segment and only that span is read.
 */
export async function* openParts(
    source: AsyncIterable<Buffer>,
    dataKey: Buffer,
    objectId: Buffer,
    table: PartEntry[],
    segmentSize: number,
    range?: PartsRange,
): AsyncGenerator<Buffer> {
    const reader = new ExactReader(source[Symbol.asyncIterator]());
    try {
        const sealed = segmentSize + TAG_BYTES;
        let plainAt = 0;
        let cipherAt = 0;
        for (const entry of table) {
            const partPlainStart = plainAt;
            const partCipherStart = cipherAt;
            plainAt += entry.plainLength;
            cipherAt += partCipherLength(entry.plainLength, segmentSize);
            const n = segmentCount(entry.plainLength, segmentSize);
            // Segments of this part inside the requested span (all of them without a range).
            let first = 0;
            let last = n - 1;
            if (range) {
                if (cipherAt - 1 < range.cipherStart || partCipherStart > range.cipherEnd) continue;
                first = Math.max(0, Math.floor((range.cipherStart - partCipherStart - PART_HEADER_BYTES) / sealed));
                last = Math.min(n - 1, Math.floor((range.cipherEnd - partCipherStart - PART_HEADER_BYTES) / sealed));
            }
            const headerInSpan = !range || range.cipherStart <= partCipherStart;
            if (headerInSpan) {
                const header = await reader.read(PART_HEADER_BYTES);
                if (!header.subarray(0, 8).equals(PART_MAGIC) || !header.subarray(8, 24).equals(entry.salt)) {
                    throw new IntegrityError(`part ${entry.part}: header does not match the part table`);
                }
            }
            const s = {
                key: partKey(dataKey, objectId, entry.part, entry.salt),
                objectId,
                part: entry.part,
                segmentSize,
            };
            for (let i = first; i <= last; i++) {
                const plainLength = i === n - 1 ? entry.plainLength - i * segmentSize : segmentSize;
                let plain = openSealedSegment(s, i, i === n - 1, await reader.read(plainLength + TAG_BYTES));
                if (range) {
                    const segmentStart = partPlainStart + i * segmentSize;
                    const from = Math.max(0, range.start - segmentStart);
                    const to = Math.min(plain.length, range.end + 1 - segmentStart);
                    plain = plain.subarray(from, Math.max(from, to));
                }
                if (plain.length) yield plain;
            }
        }
        if (!(await reader.atEnd())) throw new IntegrityError("data after the last part");
    } finally {
        // The client went away, or a part failed: the backend GET ends with this read.
        await reader.close();
    }
}

function u16(n: number): Buffer {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
}

function u64(n: number): Buffer {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
}
