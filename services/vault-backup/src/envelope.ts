// The encrypted form of a snapshot, as it is stored in the bucket: a header, then chunks of AES-256-GCM.
//
//   header  = "PCVAULTB" (8 bytes) | version u16 = 1 | chunk size u32 | taken-at ms u64 | salt (32 bytes)
//   chunk i = AES-256-GCM(chunk key, nonce = 0x000000 | i u64 | final u8, aad = header)(up to chunk size bytes) | tag
//
// Every backup has its own chunk key, HKDF-SHA256(backup key, salt): nonces never repeat across backups. The
// nonce holds the chunk's number (no reordering, no chunk dropped from the middle) and whether it is the last
// one (no truncation at a chunk boundary); the header is authenticated with every chunk (no changed time or
// chunk size). Anything changed or cut off fails authentication.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const MAGIC = Buffer.from("PCVAULTB", "ascii");
const VERSION = 1;
const HEADER_BYTES = MAGIC.length + 2 + 4 + 8 + 32;
const TAG_BYTES = 16;
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export class EnvelopeError extends Error {
    override name = "EnvelopeError";
}

function chunkKey(key: Buffer, salt: Buffer): Buffer {
    if (key.length !== 32) throw new EnvelopeError("the backup key must be 32 bytes");
    return Buffer.from(hkdfSync("sha256", key, salt, "peoples-cloud vault-backup v1", 32));
}

function nonce(index: number, final: boolean): Buffer {
    const n = Buffer.alloc(12);
    n.writeBigUInt64BE(BigInt(index), 3);
    n[11] = final ? 1 : 0;
    return n;
}

/** The size of the encrypted form of `plainBytes` bytes: an upload states its length before it starts. */
export function sealedLength(plainBytes: number, chunkBytes = DEFAULT_CHUNK_BYTES): number {
    const chunks = Math.max(1, Math.ceil(plainBytes / chunkBytes));
    return HEADER_BYTES + plainBytes + chunks * TAG_BYTES;
}

/** Encrypts `plain` chunk by chunk, as a stream: the header first, then each sealed chunk. */
export function* seal(
    plain: Buffer,
    key: Buffer,
    takenAt: Date,
    chunkBytes = DEFAULT_CHUNK_BYTES,
): Generator<Buffer, void, undefined> {
    const salt = randomBytes(32);
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt16BE(VERSION, 8);
    header.writeUInt32BE(chunkBytes, 10);
    header.writeBigUInt64BE(BigInt(takenAt.getTime()), 14);
    salt.copy(header, 22);
    yield header;
    const k = chunkKey(key, salt);
    const chunks = Math.max(1, Math.ceil(plain.length / chunkBytes));
    for (let i = 0; i < chunks; i++) {
        const cipher = createCipheriv("aes-256-gcm", k, nonce(i, i === chunks - 1));
        cipher.setAAD(header);
        const body = cipher.update(plain.subarray(i * chunkBytes, (i + 1) * chunkBytes));
        yield Buffer.concat([body, cipher.final(), cipher.getAuthTag()]);
    }
}

export interface Opened {
    plain: Buffer;
    takenAt: Date;
}

/** Decrypts a whole backup; throws an EnvelopeError for anything that is not one, intact, under this key. */
export function open(sealed: Buffer, key: Buffer): Opened {
    if (sealed.length < HEADER_BYTES || !sealed.subarray(0, 8).equals(MAGIC))
        throw new EnvelopeError("not a vault-backup file (no PCVAULTB header)");
    const version = sealed.readUInt16BE(8);
    if (version !== VERSION) throw new EnvelopeError(`vault-backup format version ${version} is not known here`);
    const header = sealed.subarray(0, HEADER_BYTES);
    const chunkBytes = header.readUInt32BE(10);
    if (chunkBytes === 0) throw new EnvelopeError("the header names a chunk size of 0");
    const takenAt = new Date(Number(header.readBigUInt64BE(14)));
    const k = chunkKey(key, header.subarray(22, HEADER_BYTES));
    const parts: Buffer[] = [];
    let offset = HEADER_BYTES;
    for (let i = 0; ; i++) {
        const end = Math.min(offset + chunkBytes + TAG_BYTES, sealed.length);
        const final = end === sealed.length;
        if (end - offset < TAG_BYTES) throw new EnvelopeError("the backup is truncated");
        const decipher = createDecipheriv("aes-256-gcm", k, nonce(i, final));
        decipher.setAAD(header);
        decipher.setAuthTag(sealed.subarray(end - TAG_BYTES, end));
        try {
            parts.push(decipher.update(sealed.subarray(offset, end - TAG_BYTES)), decipher.final());
        } catch {
            throw new EnvelopeError(
                `chunk ${i} of the backup fails authentication: it is truncated or corrupted, or the key is not the one it was made with`,
            );
        }
        offset = end;
        if (final) return { plain: Buffer.concat(parts), takenAt };
    }
}
