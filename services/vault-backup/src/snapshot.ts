// A Vault (OpenBao) raft snapshot: taken from the active node and checked before anyone relies on it.
//
// A snapshot is a gzipped tar of meta.json (the raft index and term), state.bin (the data, encrypted by Vault's
// barrier) and SHA256SUMS over those two; `check` reads it whole and verifies the sums, so a standby's empty
// answer, an HTML error page or a cut-off download is refused with the reason.
import { createHash } from "node:crypto";
import * as zlib from "node:zlib";

export class SnapshotError extends Error {
    override name = "SnapshotError";
}

export interface SnapshotInfo {
    /** The raft index and term the snapshot holds: writes after it are not in it. */
    index: number;
    term: number;
    bytes: number;
}

/** The files of a tar archive (ustar: 512-byte headers, data padded to 512 bytes). */
function untar(tar: Buffer): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    for (let offset = 0; offset + 512 <= tar.length && tar[offset] !== 0;) {
        const field = (start: number, length: number) =>
            tar
                .subarray(offset + start, offset + start + length)
                .toString("latin1")
                .replace(/\0.*$/s, "")
                .trim();
        const name = field(0, 100);
        const size = parseInt(field(124, 12), 8);
        if (!Number.isSafeInteger(size) || offset + 512 + size > tar.length)
            throw new SnapshotError(`the snapshot's archive is cut off in ${name || "an entry"}`);
        files.set(name, tar.subarray(offset + 512, offset + 512 + size));
        offset += 512 + Math.ceil(size / 512) * 512;
    }
    return files;
}

/** Verifies a snapshot as Vault wrote it; throws a SnapshotError naming what is wrong. */
export function checkSnapshot(snapshot: Buffer): SnapshotInfo {
    if (snapshot.length === 0)
        throw new SnapshotError("the snapshot is empty (a standby node answers an empty 200: ask the active node)");
    if (snapshot[0] !== 0x1f || snapshot[1] !== 0x8b)
        throw new SnapshotError("the snapshot is not gzip data (a standby node or a proxy answered in its place)");
    let files: Map<string, Buffer>;
    try {
        files = untar(zlib.gunzipSync(snapshot));
    } catch (err) {
        if (err instanceof SnapshotError) throw err;
        throw new SnapshotError(`the snapshot does not decompress: ${(err as Error).message}`);
    }
    const sums = files.get("SHA256SUMS");
    if (!sums) throw new SnapshotError("the snapshot holds no SHA256SUMS");
    const listed = sums
        .toString("utf8")
        .split("\n")
        .filter((line) => line.trim())
        .map((line) => line.trim().split(/\s+/));
    for (const name of ["meta.json", "state.bin"]) {
        const entry = listed.find(([, file]) => file === name);
        const data = files.get(name);
        if (!entry || !data) throw new SnapshotError(`the snapshot holds no ${name} or no sum of it`);
        if (createHash("sha256").update(data).digest("hex") !== entry[0])
            throw new SnapshotError(`${name} in the snapshot does not match its SHA256SUMS`);
    }
    const meta = JSON.parse(files.get("meta.json")!.toString("utf8")) as { Index?: number; Term?: number };
    return { index: meta.Index ?? 0, term: meta.Term ?? 0, bytes: snapshot.length };
}
