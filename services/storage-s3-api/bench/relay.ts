// The benchmark's reference path: a TCP relay to the backend that runs AES-256-GCM over every byte it
// forwards, in 64 KiB segments, and writes what one turn of its event loop read in one piece of up to
// 512 KiB. That is the service's per-byte cryptography in one Node process in the path, without HTTP,
// signatures or the SDK: about what the encrypted path would reach if those cost nothing. It forwards the
// original bytes, so clients talk S3 to the backend through it unchanged. BENCH_RELAY_AES=0 leaves the AES
// out, to see what the extra hop alone costs.
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { plainConnection } from "../src/backend-http";
import { OBJECT_ID_BYTES } from "../src/format/keys";
import { Coalescer, DEFAULT_SEGMENT_SIZE, sealSegment, type SegmentStream, WRITE_BYTES } from "../src/format/segments";

/** Seals a byte stream in segments as the service does (`sealSegment`); what it produces is dropped. */
class SegmentSealer {
    private readonly s: SegmentStream = {
        key: randomBytes(32),
        objectId: randomBytes(OBJECT_ID_BYTES),
        part: 0,
        segmentSize: DEFAULT_SEGMENT_SIZE,
    };
    private index = 0;
    private pieces: Buffer[] = [];
    private filled = 0;

    add(chunk: Buffer): void {
        for (let at = 0; at < chunk.length;) {
            const n = Math.min(chunk.length - at, DEFAULT_SEGMENT_SIZE - this.filled);
            this.pieces.push(chunk.subarray(at, at + n));
            at += n;
            this.filled += n;
            if (this.filled === DEFAULT_SEGMENT_SIZE) {
                sealSegment(this.s, this.index++, false, this.pieces);
                this.pieces = [];
                this.filled = 0;
            }
        }
    }
}

/** Forwards `from` to `to`: what one turn of the event loop read goes out in one write, up to WRITE_BYTES. */
function forward(from: net.Socket, to: net.Socket): void {
    const sealer = process.env.BENCH_RELAY_AES === "0" ? undefined : new SegmentSealer();
    const out = new Coalescer(WRITE_BYTES, (joined) => {
        if (!to.write(joined)) {
            from.pause();
            to.once("drain", () => from.resume());
        }
    });
    let scheduled = false;
    from.on("data", (chunk: Buffer) => {
        sealer?.add(chunk);
        out.add(chunk);
        if (!scheduled) {
            scheduled = true;
            setImmediate(() => {
                scheduled = false;
                out.flush();
            });
        }
    });
    from.on("end", () => {
        out.flush();
        to.end();
    });
    from.on("error", () => to.destroy());
}

/** Listens on LISTEN (host:port) and relays each connection to TARGET (host:port). */
function main(): void {
    const [host, port] = (process.env.LISTEN ?? "").split(":");
    const [targetHost, targetPort] = (process.env.TARGET ?? "").split(":");
    net.createServer((client) => {
        // Read from the backend as the service's backend client reads.
        const backend = plainConnection(Number(targetPort), targetHost);
        // As node:http does: small writes (request and response heads) go out at once.
        client.setNoDelay(true);
        backend.setNoDelay(true);
        forward(client, backend);
        forward(backend, client);
    }).listen(Number(port), host);
}

main();
