// Name privacy: object keys encrypted segment by segment before they reach the backend, so that a prefix
// ending at a "/" still maps to one backend prefix and listings by directory keep working.
import { createCipheriv, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/** The largest key S3 backends accept, in UTF-8 bytes. */
export const MAX_BACKEND_KEY_BYTES = 1024;
const IV_BYTES = 16;

interface BucketKeys {
    mac: Buffer;
    enc: Buffer;
}

/** ISO/IEC 7816-4 padding to whole 16-byte blocks: the backend learns a segment's length only to 16 bytes. */
function pad(plain: Buffer): Buffer {
    const padded = Buffer.alloc((Math.floor(plain.length / 16) + 1) * 16);
    plain.copy(padded);
    padded[plain.length] = 0x80;
    return padded;
}

function unpad(padded: Buffer): Buffer | undefined {
    const end = padded.lastIndexOf(0x80);
    if (end < 0 || padded.length - end > 16 || padded.subarray(end + 1).some((b) => b !== 0)) return undefined;
    return padded.subarray(0, end);
}

/**
 * Deterministic authenticated encryption of each "/"-separated segment (SIV: the IV is an HMAC of the segment
 * and of the plaintext path above it, the segment AES-256-CTR under that IV). The same name in two folders
 * encrypts differently; the same path always encrypts the same, which is what lookups and prefixes need.
 */
export class NameCipher {
    private readonly perBucket = new Map<string, BucketKeys>();

    constructor(private readonly rootKey: Buffer) {
        if (rootKey.length < 32) throw new RangeError("a name key has at least 32 bytes");
    }

    private keys(bucket: string): BucketKeys {
        let keys = this.perBucket.get(bucket);
        if (!keys) {
            const derive = (label: string) =>
                Buffer.from(hkdfSync("sha256", this.rootKey, Buffer.from(bucket), `pce1 name ${label}`, 32));
            keys = { mac: derive("mac"), enc: derive("enc") };
            this.perBucket.set(bucket, keys);
        }
        return keys;
    }

    private iv(keys: BucketKeys, parent: string, segment: Buffer): Buffer {
        const parentBytes = Buffer.from(parent);
        const length = Buffer.alloc(4);
        length.writeUInt32BE(parentBytes.length);
        return createHmac("sha256", keys.mac)
            .update(length)
            .update(parentBytes)
            .update(segment)
            .digest()
            .subarray(0, IV_BYTES);
    }

    private encryptSegment(keys: BucketKeys, parent: string, segment: string): string {
        const plain = Buffer.from(segment);
        const iv = this.iv(keys, parent, plain);
        const cipher = createCipheriv("aes-256-ctr", keys.enc, iv);
        return Buffer.concat([iv, cipher.update(pad(plain)), cipher.final()]).toString("base64url");
    }

    private decryptSegment(keys: BucketKeys, parent: string, stored: string): string | undefined {
        if (!/^[A-Za-z0-9_-]+$/.test(stored)) return undefined;
        const raw = Buffer.from(stored, "base64url");
        if (raw.length < IV_BYTES + 16 || (raw.length - IV_BYTES) % 16 !== 0) return undefined;
        const iv = raw.subarray(0, IV_BYTES);
        const decipher = createCipheriv("aes-256-ctr", keys.enc, iv);
        const plain = unpad(Buffer.concat([decipher.update(raw.subarray(IV_BYTES)), decipher.final()]));
        if (!plain || !timingSafeEqual(iv, this.iv(keys, parent, plain))) return undefined;
        return plain.toString();
    }

    /** The backend key of a client key. */
    encrypt(bucket: string, key: string): string {
        const keys = this.keys(bucket);
        const segments = key.split("/");
        return segments.map((s, i) => this.encryptSegment(keys, segments.slice(0, i).join("/"), s)).join("/");
    }

    /** The client key behind a backend key, or undefined when it is not a name this service encrypted. */
    decrypt(bucket: string, stored: string): string | undefined {
        const keys = this.keys(bucket);
        const plain: string[] = [];
        for (const segment of stored.split("/")) {
            const decrypted = this.decryptSegment(keys, plain.join("/"), segment);
            if (decrypted === undefined) return undefined;
            plain.push(decrypted);
        }
        return plain.join("/");
    }

    /**
     * The backend prefix that holds every key starting with `prefix`: its whole segments encrypted, ending in
     * "/" (or "" at the top). Keys under it still have to be filtered by the partial segment after it.
     */
    folderPrefix(bucket: string, prefix: string): string {
        const cut = prefix.lastIndexOf("/");
        return cut < 0 ? "" : `${this.encrypt(bucket, prefix.slice(0, cut))}/`;
    }
}
