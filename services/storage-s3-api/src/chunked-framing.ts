// HTTP/1.1's chunked framing (RFC 9112 §7.1), shared by the backend's chunked answers and the aws-chunked
// uploads SDKs send: a size line with extensions, the data, CRLF; a last chunk of size 0, trailers, an empty
// line. A push parser that hands the data on as slices of what it was fed, without copying.

const MAX_LINE = 4096;

export interface ChunkedEvents {
    /** A chunk's size line: its size (0 for the last chunk) and its extensions, the `;`-separated rest. */
    chunk(size: number, extensions: string[]): void;
    /** Part of a chunk's data; `last` is set on the part that completes the chunk. */
    data(piece: Buffer, last: boolean): void;
    /** A trailer field, its name in lower case. */
    trailer(name: string, value: string): void;
}

export class ChunkedFraming {
    private state: "size" | "data" | "data-end" | "trailers" | "done" = "size";
    /** A line read so far, when it spans fed pieces. */
    private line = "";
    private left = 0;

    constructor(
        private readonly events: ChunkedEvents,
        /** Makes the error thrown for a framing problem, given as a noun phrase ("a malformed chunk size"). */
        private readonly problem: (what: string) => Error,
    ) {}

    /** Whether the empty line after the trailers, the body's end, has been read. */
    get ended(): boolean {
        return this.state === "done";
    }

    /** Whether the last chunk's size line was the last thing read: a body may be cut there when no trailer is due. */
    get atTrailers(): boolean {
        return this.state === "trailers" && this.line === "";
    }

    /** Feeds bytes; once the body has ended, returns the bytes that follow it (else undefined). */
    feed(bytes: Buffer): Buffer | undefined {
        let at = 0;
        while (this.state !== "done") {
            if (at === bytes.length) return undefined;
            if (this.state === "data") {
                const n = Math.min(this.left, bytes.length - at);
                this.left -= n;
                if (this.left === 0) this.state = "data-end";
                this.events.data(bytes.subarray(at, (at += n)), this.left === 0);
                continue;
            }
            const newline = bytes.indexOf(10, at);
            this.line += bytes.toString("latin1", at, newline < 0 ? bytes.length : newline);
            if (this.line.length > MAX_LINE) throw this.problem("a chunk line longer than 4 KiB");
            if (newline < 0) return undefined;
            at = newline + 1;
            if (!this.line.endsWith("\r")) throw this.problem("a chunk line not ended by CRLF");
            const line = this.line.slice(0, -1);
            this.line = "";
            this.onLine(line);
        }
        return bytes.subarray(at);
    }

    private onLine(line: string): void {
        if (this.state === "data-end") {
            if (line !== "") throw this.problem("a chunk longer than its size");
            this.state = "size";
        } else if (this.state === "size") {
            const [size, ...extensions] = line.split(";");
            this.left = /^[0-9a-fA-F]{1,16}$/.test(size) ? parseInt(size, 16) : NaN;
            if (!Number.isSafeInteger(this.left)) throw this.problem("a malformed chunk size");
            this.state = this.left === 0 ? "trailers" : "data";
            this.events.chunk(this.left, extensions);
        } else if (line === "") {
            this.state = "done";
        } else {
            const colon = line.indexOf(":");
            if (colon <= 0) throw this.problem("a malformed trailer");
            this.events.trailer(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
    }
}
