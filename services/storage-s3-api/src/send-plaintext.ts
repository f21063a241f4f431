// A GET's answer: the backend's body opened as it arrives and written to the client segment by segment, each
// segment only once its tag has been checked. Read, open and write overlap: what one read of the backend brought
// goes out (in one writev, not copied together) while the next read is under way, and the headers go out as soon
// as the reads of one turn of the event loop have been taken in without completing a segment, instead of
// waiting for it.
import type * as http from "node:http";
import type { Readable } from "node:stream";

/** What turns a body's chunks into authenticated plaintext (SegmentOpener, or a stream already opened). */
export interface Opener {
    /** The plaintext the chunk completes, authenticated; throws if it does not authenticate. */
    push(chunk: Buffer): Buffer[];
    /** True once all the plaintext has come out of push. */
    readonly done: boolean;
    /** True while the bytes still to come are the last segment's: the next one that opens ends the answer. */
    readonly onLast: boolean;
    /** The body ended: throws if plaintext is missing. */
    end(): void;
}

/** The backend's body and what opens it. */
export interface PlainBody {
    source: Readable;
    opener: Opener;
}

/**
 * Sends `status`, `headers` and the plaintext of `body`. Rejects with the failure if it fails before anything was
 * sent (so the client gets an error answer); after that a failure cuts the connection, and the client, which
 * was told the length, sees the body end short.
 */
export function sendPlaintext(
    res: http.ServerResponse,
    status: number,
    headers: http.OutgoingHttpHeaders,
    { source, opener }: PlainBody,
): Promise<void> {
    return new Promise((resolve, reject) => {
        let started = false;
        let ended = false;
        let headersDue = false;
        const start = () => {
            if (!started) res.writeHead(status, headers);
            started = true;
        };
        const fail = (err: unknown) => {
            if (ended) return;
            ended = true;
            source.off("data", onData);
            source.destroy();
            if (started) {
                res.destroy();
                resolve();
            } else {
                reject(err instanceof Error ? err : new Error(String(err)));
            }
        };
        const onData = (chunk: Buffer) => {
            let pieces: Buffer[];
            try {
                pieces = opener.push(chunk);
            } catch (err) {
                fail(err);
                return;
            }
            if (opener.done) {
                finish(pieces);
            } else if (pieces.length > 0) {
                start();
                // One writev for what this read opened, headers included the first time.
                res.cork();
                let ok = true;
                for (const piece of pieces) ok = res.write(piece) && ok;
                res.uncork();
                if (!ok) {
                    source.pause();
                    res.once("drain", () => source.resume());
                }
            } else if (!started && !headersDue && !opener.onLast) {
                // Nothing to send with them yet. Unless this turn of the event loop reads the rest of the segment
                // (its last bytes often come in a read of their own), the headers go alone. An answer of one
                // segment waits for it instead: alone, the headers would cost a second write and wake the
                // client twice (2-3% of a 4 KiB GET).
                headersDue = true;
                setImmediate(() => {
                    if (started || ended) return;
                    start();
                    res.flushHeaders();
                });
            }
        };
        const finish = (pieces: Buffer[]) => {
            if (ended) return;
            ended = true;
            start();
            res.cork();
            for (const piece of pieces.slice(0, -1)) res.write(piece);
            res.end(pieces.at(-1));
            res.uncork();
            resolve();
        };
        source.on("data", onData);
        source.on("error", fail);
        source.on("end", () => {
            try {
                opener.end();
            } catch (err) {
                fail(err);
                return;
            }
            finish([]);
        });
        // The client went away: so does the backend GET.
        res.on("close", () => {
            if (!res.writableFinished) fail(new Error("the client closed the connection"));
        });
    });
}
