// What clients may name: collections, document keys, index names and field paths. Each check throws a 400
// whose message says what a valid name looks like.
import { KvError } from "./objects";

const COLLECTION = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PATH_STEP = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INDEX_NAME = /^[A-Za-z_][A-Za-z0-9_.]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
export const MAX_PATH_DEPTH = 8;
export const MAX_KEY_BYTES = 512;

export function checkCollection(name: string): void {
    if (!COLLECTION.test(name)) {
        throw new KvError(400, "InvalidCollection", "a collection name is 1-63 of a-z, 0-9, '_' and '-'");
    }
}

export function checkKey(key: string): void {
    const bytes = Buffer.byteLength(key);
    if (bytes < 1 || bytes > MAX_KEY_BYTES || CONTROL.test(key)) {
        throw new KvError(
            400,
            "InvalidKey",
            `a document key is 1-${MAX_KEY_BYTES} bytes of UTF-8 without control characters`,
        );
    }
}

export function checkPath(path: unknown): asserts path is string {
    const steps = typeof path === "string" ? path.split(".") : [];
    if (steps.length === 0 || steps.length > MAX_PATH_DEPTH || !steps.every((s) => PATH_STEP.test(s))) {
        throw new KvError(
            400,
            "InvalidPath",
            `a field path is 1-${MAX_PATH_DEPTH} dot-separated names like address.city, each [A-Za-z_][A-Za-z0-9_]*`,
        );
    }
}

export function checkIndexName(name: unknown): asserts name is string {
    if (typeof name !== "string" || !INDEX_NAME.test(name)) {
        throw new KvError(400, "InvalidIndexName", "an index name is 1-64 of A-Z, a-z, 0-9, '_' and '.'");
    }
}
