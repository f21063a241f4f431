// Per-object keys of the "pce1" format, derived from one data key (DEK) that Vault's transit engine wraps.
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

export const FORMAT = "pce1";
export const OBJECT_ID_BYTES = 16;
export const DEK_BYTES = 32;

export interface ObjectKeys {
    /** Encrypts the content segments of a single PUT. */
    data: Buffer;
    /** Seals the client metadata (length, content type, user metadata). */
    meta: Buffer;
    /** MACs the bucket and key an object was written under, so a renamed object is refused. */
    bind: Buffer;
    /** Stored beside the object: proves the DEK is the one the object was written with. */
    commitment: Buffer;
}

function expand(dek: Buffer, objectId: Buffer, label: string): Buffer {
    return Buffer.from(hkdfSync("sha256", dek, objectId, `${FORMAT} ${label}`, 32));
}

/**
 * The keys last derived from a data key, kept as long as that key's Buffer: the transit client's cache hands
 * out the same Buffer for each GET of an object, which then derives nothing (four HKDFs, about 90 µs of CPU).
 */
const derived = new WeakMap<Buffer, { objectId: Buffer; keys: ObjectKeys }>();

export function deriveObjectKeys(dek: Buffer, objectId: Buffer): ObjectKeys {
    if (dek.length !== DEK_BYTES) throw new RangeError(`a data key has ${DEK_BYTES} bytes, got ${dek.length}`);
    if (objectId.length !== OBJECT_ID_BYTES) {
        throw new RangeError(`an object id has ${OBJECT_ID_BYTES} bytes, got ${objectId.length}`);
    }
    const known = derived.get(dek);
    if (known?.objectId.equals(objectId)) return known.keys;
    const keys = Object.freeze({
        data: expand(dek, objectId, "data"),
        meta: expand(dek, objectId, "meta"),
        bind: expand(dek, objectId, "bind"),
        commitment: expand(dek, objectId, "commit"),
    });
    derived.set(dek, { objectId: Buffer.from(objectId), keys });
    return keys;
}

/** Constant-time check that a stored commitment matches the keys derived from an unwrapped DEK. */
export function commitmentMatches(keys: ObjectKeys, stored: Buffer): boolean {
    return stored.length === keys.commitment.length && timingSafeEqual(stored, keys.commitment);
}

/** The 16-byte name binding of an object to its bucket and key. */
export function nameBinding(keys: ObjectKeys, bucket: string, key: string): Buffer {
    return createHmac("sha256", keys.bind).update(bucket).update("\0").update(key).digest().subarray(0, 16);
}
