// A query as clients give it, checked, and turned into a range of encoded values.
import { KvError } from "./objects";
import type { ValueRange } from "./pages";
import { encodeValue, isScalar, type Scalar, typeRange } from "./values";

export interface Query {
    index: string;
    eq?: Scalar;
    gt?: Scalar;
    gte?: Scalar;
    lt?: Scalar;
    lte?: Scalar;
    order?: "asc" | "desc";
    limit?: number;
    cursor?: string;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

const BOUNDS = ["eq", "gt", "gte", "lt", "lte"] as const;

/** A query from a JSON body (POST) or from URL parameters whose values are JSON (GET). */
export function parseQuery(input: unknown): Query {
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
        throw new KvError(400, "InvalidQuery", "a query is a JSON object");
    }
    const q = input as Record<string, unknown>;
    const known = new Set<string>(["index", "order", "limit", "cursor", ...BOUNDS]);
    const unknown = Object.keys(q).filter((k) => !known.has(k));
    if (unknown.length) throw new KvError(400, "InvalidQuery", `unknown query fields: ${unknown.join(", ")}`);
    if (typeof q.index !== "string") throw new KvError(400, "InvalidQuery", "a query names its index");
    if (q.order !== undefined && q.order !== "asc" && q.order !== "desc") {
        throw new KvError(400, "InvalidQuery", "order is asc or desc");
    }
    const limit = q.limit ?? DEFAULT_LIMIT;
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
        throw new KvError(400, "InvalidQuery", `limit is a whole number from 1 to ${MAX_LIMIT}`);
    }
    if (q.cursor !== undefined && typeof q.cursor !== "string") {
        throw new KvError(400, "InvalidCursor", "the cursor is the string a previous answer gave");
    }
    for (const k of BOUNDS) {
        const v = q[k];
        if (v !== undefined && (!isScalar(v) || (typeof v === "number" && !Number.isFinite(v)))) {
            throw new KvError(400, "InvalidQuery", `${k} takes a string, number, boolean or null`);
        }
    }
    return { ...(q as unknown as Query), limit };
}

/** The encoded range of a query: `eq`, or a range whose open ends stop at the end of the bound's type. */
export function rangeOf(q: Query): ValueRange {
    const given = BOUNDS.filter((k) => q[k] !== undefined);
    if (given.length === 0) throw new KvError(400, "InvalidQuery", "a query needs eq, or gt/gte and/or lt/lte");
    if (q.eq !== undefined) {
        if (given.length > 1) throw new KvError(400, "InvalidQuery", "eq does not combine with a range");
        const v = encodeValue(q.eq);
        return { low: v, lowOpen: false, high: v, highOpen: false };
    }
    if (q.gt !== undefined && q.gte !== undefined) throw new KvError(400, "InvalidQuery", "give gt or gte, not both");
    if (q.lt !== undefined && q.lte !== undefined) throw new KvError(400, "InvalidQuery", "give lt or lte, not both");
    // Not `??`: null is a value to compare with.
    const lower = q.gt !== undefined ? q.gt : q.gte;
    const upper = q.lt !== undefined ? q.lt : q.lte;
    const type = typeRange((lower !== undefined ? lower : upper) as Scalar);
    if (lower !== undefined && upper !== undefined && typeRange(upper).low !== type.low) {
        throw new KvError(400, "InvalidQuery", "a range's bounds are of one type (booleans count as one type)");
    }
    return {
        low: lower === undefined ? type.low : encodeValue(lower),
        lowOpen: q.gt !== undefined,
        high: upper === undefined ? type.high : encodeValue(upper),
        highOpen: upper === undefined || q.lt !== undefined,
    };
}
