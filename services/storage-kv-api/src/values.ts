// Index values in an order-preserving encoding: lower-case hex whose string order is the values' order.
// null < false < true < numbers < strings; numbers by value, strings by their UTF-8 bytes. Objects, arrays
// and missing fields are not indexed.

export type Scalar = null | boolean | number | string;

const TAG = { null: "00", false: "01", true: "02", number: "03", string: "04" } as const;

export function isScalar(value: unknown): value is Scalar {
    return value === null || ["boolean", "number", "string"].includes(typeof value);
}

export function encodeValue(value: Scalar): string {
    if (value === null) return TAG.null;
    if (typeof value === "boolean") return value ? TAG.true : TAG.false;
    if (typeof value === "number") {
        const bytes = Buffer.alloc(8);
        bytes.writeDoubleBE(value === 0 ? 0 : value); // -0 and 0 are one value
        // Flip the sign bit of positives and every bit of negatives: byte order becomes numeric order.
        if (bytes[0] & 0x80) for (let i = 0; i < 8; i++) bytes[i] ^= 0xff;
        else bytes[0] ^= 0x80;
        return TAG.number + bytes.toString("hex");
    }
    return TAG.string + Buffer.from(value, "utf8").toString("hex");
}

/** The encoded range [low, high) holding every value of one type (false and true are one type). */
export function typeRange(value: Scalar): { low: string; high: string } {
    if (typeof value === "boolean") return { low: TAG.false, high: TAG.number };
    const tag = encodeValue(value).slice(0, 2);
    return { low: tag, high: (Number.parseInt(tag, 16) + 1).toString(16).padStart(2, "0") };
}

/** The value at a dotted field path, or undefined when a step is missing or not an object. */
export function valueAt(doc: unknown, path: string): unknown {
    let current: unknown = doc;
    for (const step of path.split(".")) {
        if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
        current = (current as Record<string, unknown>)[step];
    }
    return current;
}

/** The encoded value a document has at an indexed path, or undefined when it is not indexable. */
export function indexedValue(doc: unknown, path: string): string | undefined {
    const value = valueAt(doc, path);
    return isScalar(value) && !(typeof value === "number" && !Number.isFinite(value)) ? encodeValue(value) : undefined;
}
