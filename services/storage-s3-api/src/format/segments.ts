// Content encryption of the "pce1" format: AES-256-GCM over fixed-size segments (see FORMAT.md).
// nonce = BE32(part) || BE64(index): unique under a key, because every object (and part attempt) has its own key.
// AAD binds each segment to its object, part, index and to whether it is the last one, so reordering,
// dropping, adding, truncating and swapping segments between objects all fail authentication.
import { createCipheriv, createDecipheriv } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { FORMAT, OBJECT_ID_BYTES } from "./keys";

export const TAG_BYTES = 16;
export const DEFAULT_SEGMENT_SIZE = 64 * 1024;

export class IntegrityError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "IntegrityError";
    }
}

export interface SegmentStream {
    key: Buffer;
    objectId: Buffer;
    /** 0 for a single PUT, the part number for a multipart upload. */
    part: number;
    segmentSize: number;
}

function nonce(part: number, index: number): Buffer {
    const n = Buffer.alloc(12);
    n.writeUInt32BE(part, 0);
    n.writeBigUInt64BE(BigInt(index), 4);
    return n;
}

function aad(s: SegmentStream, index: number, final: boolean): Buffer {
    const a = Buffer.alloc(FORMAT.length + OBJECT_ID_BYTES + 2 + 8 + 1);
    let at = a.write(FORMAT, 0, "ascii");
    at += s.objectId.copy(a, at);
    at = a.writeUInt16BE(s.part, at);
    at = a.writeBigUInt64BE(BigInt(index), at);
    a.writeUInt8(final ? 1 : 0, at);
    return a;
}

/**
 * Seals one segment given in pieces. Returns the ciphertext pieces followed by the tag: nothing is copied
 * together, as each copy of the content costs about as much CPU as the encryption itself.
 */
export function sealSegment(s: SegmentStream, index: number, final: boolean, plaintext: readonly Buffer[]): Buffer[] {
    const cipher = createCipheriv("aes-256-gcm", s.key, nonce(s.part, index), { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(s, index, final));
    const sealed = plaintext.map((piece) => cipher.update(piece));
    cipher.final();
    sealed.push(cipher.getAuthTag());
    return sealed;
}

/** A whole plaintext held in memory, sealed at once: the same segments SealStream makes of it. */
export function sealAll(s: SegmentStream, plaintext: Buffer): Buffer[] {
    const n = segmentCount(plaintext.length, s.segmentSize);
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) {
        const piece = plaintext.subarray(i * s.segmentSize, Math.min(plaintext.length, (i + 1) * s.segmentSize));
        out.push(...sealSegment(s, i, i === n - 1, [piece]));
    }
    return out;
}

/** Opens one segment given as body pieces and its tag; returns the plaintext pieces once the tag checks out. */
export function openSegment(
    s: SegmentStream,
    index: number,
    final: boolean,
    body: readonly Buffer[],
    tag: Buffer,
): Buffer[] {
    const decipher = createDecipheriv("aes-256-gcm", s.key, nonce(s.part, index), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(s, index, final));
    decipher.setAuthTag(tag);
    const plaintext = body.map((piece) => decipher.update(piece));
    try {
        decipher.final();
    } catch {
        throw new IntegrityError(`segment ${index} failed authentication`);
    }
    return plaintext;
}

/** Opens one segment held in a single buffer (body then tag). */
export function openSealedSegment(s: SegmentStream, index: number, final: boolean, sealed: Buffer): Buffer {
    if (sealed.length < TAG_BYTES) throw new IntegrityError(`segment ${index} is shorter than its tag`);
    const bodyLength = sealed.length - TAG_BYTES;
    return openSegment(s, index, final, [sealed.subarray(0, bodyLength)], sealed.subarray(bodyLength))[0];
}

export function segmentCount(plainLength: number, segmentSize: number): number {
    return Math.max(1, Math.ceil(plainLength / segmentSize));
}

export function ciphertextLength(plainLength: number, segmentSize: number): number {
    return plainLength + TAG_BYTES * segmentCount(plainLength, segmentSize);
}

/** The plaintext length a ciphertext length stands for, or undefined if no plaintext encrypts to it. */
export function plaintextLength(cipherLength: number, segmentSize: number): number | undefined {
    const n = Math.max(1, Math.ceil(cipherLength / (segmentSize + TAG_BYTES)));
    const plain = cipherLength - TAG_BYTES * n;
    return plain >= 0 && ciphertextLength(plain, segmentSize) === cipherLength ? plain : undefined;
}

/** Collects chunks and hands out exact-size spans of them as pieces, without copying. */
export class ByteQueue {
    private chunks: Buffer[] = [];
    length = 0;
    push(chunk: Buffer): void {
        this.chunks.push(chunk);
        this.length += chunk.length;
    }
    take(size: number): Buffer[] {
        const pieces: Buffer[] = [];
        let left = size;
        while (left > 0) {
            const head = this.chunks[0];
            if (head.length <= left) {
                pieces.push(head);
                this.chunks.shift();
                left -= head.length;
            } else {
                pieces.push(head.subarray(0, left));
                this.chunks[0] = head.subarray(left);
                left = 0;
            }
        }
        this.length -= size;
        return pieces;
    }
    /** A small span as one buffer (a tag may arrive split over two chunks). */
    takeJoined(size: number): Buffer {
        const pieces = this.take(size);
        return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
    }
}

/**
 * Joins the pieces a stream emits into buffers of about `size` bytes. Each write wakes the process on the
 * other end of a socket, and MinIO or a client woken once per 64 KiB piece spends far more CPU than one woken
 * per half MiB; one copy of the content is the cheaper side of that trade.
 */
export class Coalescer {
    private pieces: Buffer[] = [];
    private length = 0;

    constructor(
        private readonly size: number,
        private readonly emit: (joined: Buffer) => void,
    ) {}

    add(piece: Buffer): void {
        if (piece.length === 0) return;
        this.pieces.push(piece);
        this.length += piece.length;
        if (this.length >= this.size) this.flush();
    }

    flush(): void {
        if (this.length === 0) return;
        this.emit(this.pieces.length === 1 ? this.pieces[0] : Buffer.concat(this.pieces, this.length));
        this.pieces = [];
        this.length = 0;
    }
}

/** How much a sealing or opening stream gathers before it writes. */
export const WRITE_BYTES = 512 * 1024;

/** Encrypts a plaintext stream into segments; the last one is flagged final when the input ends. */
export class SealStream extends Transform {
    private readonly queue = new ByteQueue();
    private readonly out = new Coalescer(WRITE_BYTES, (joined) => this.push(joined));
    private index = 0;

    constructor(private readonly s: SegmentStream) {
        super();
    }

    private pushAll(pieces: Buffer[]): void {
        for (const piece of pieces) this.out.add(piece);
    }

    override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
        this.queue.push(chunk);
        // A segment is sealed only once a byte beyond it has arrived: until then it may be the final one.
        while (this.queue.length > this.s.segmentSize) {
            this.pushAll(sealSegment(this.s, this.index++, false, this.queue.take(this.s.segmentSize)));
        }
        done();
    }

    override _flush(done: TransformCallback): void {
        this.pushAll(sealSegment(this.s, this.index++, true, this.queue.take(this.queue.length)));
        this.out.flush();
        done();
    }
}

export interface OpenRange {
    /** First and last segment present in the input, inclusive. */
    firstSegment: number;
    lastSegment: number;
    /** Index of the object's final segment (known from its authenticated plaintext length). */
    finalSegment: number;
    /** Sealed bytes of the last segment in the input (its tag included). */
    lastSealed: number;
    /** Plaintext bytes to drop from the first segment, and how many bytes to emit in all. */
    skip: number;
    length: number;
}

/**
 * Opens segments firstSegment..lastSegment as their bytes arrive. Each segment's plaintext is handed out only
 * once its tag has been checked, the last one too as soon as all its bytes are there (its length is known
 * from the authenticated plaintext length), so a whole small object opens in the read that brought it.
 */
export class SegmentOpener {
    private readonly queue = new ByteQueue();
    private readonly sealed: number;
    private index: number;
    private toSkip: number;
    private remaining: number;

    constructor(
        private readonly s: SegmentStream,
        private readonly range: OpenRange,
    ) {
        this.sealed = s.segmentSize + TAG_BYTES;
        this.index = range.firstSegment;
        this.toSkip = range.skip;
        this.remaining = range.length;
    }

    /** True once every segment of the range is open. */
    get done(): boolean {
        return this.index > this.range.lastSegment;
    }

    /** True while the segment being received is the last of the range. */
    get onLast(): boolean {
        return this.index === this.range.lastSegment;
    }

    /** Takes the next bytes of ciphertext; returns the plaintext of the segments they complete (authenticated). */
    push(chunk: Buffer): Buffer[] {
        this.queue.push(chunk);
        const out: Buffer[] = [];
        while (!this.done) {
            const size = this.onLast ? this.range.lastSealed : this.sealed;
            if (this.queue.length < size) break;
            this.open(size, out);
        }
        if (this.done && this.queue.length > 0) {
            throw new IntegrityError(`more data than segment ${this.range.lastSegment} can hold`);
        }
        return out;
    }

    /** The input ended: throws unless every segment arrived. */
    end(): void {
        if (!this.done) {
            throw new IntegrityError(`ends in segment ${this.index}; expected up to ${this.range.lastSegment}`);
        }
    }

    /** Opens the next segment, `size` bytes of the queue, and adds the part of it that was asked for to `out`. */
    private open(size: number, out: Buffer[]): void {
        if (size < TAG_BYTES) throw new IntegrityError(`segment ${this.index} is shorter than its tag`);
        const i = this.index++;
        const body = this.queue.take(size - TAG_BYTES);
        const plaintext = openSegment(this.s, i, i === this.range.finalSegment, body, this.queue.takeJoined(TAG_BYTES));
        for (const piece of plaintext) {
            const from = Math.min(this.toSkip, piece.length);
            this.toSkip -= from;
            const taken = piece.subarray(from, from + Math.min(this.remaining, piece.length - from));
            this.remaining -= taken.length;
            if (taken.length > 0) out.push(taken);
        }
    }
}

export interface CipherRange extends OpenRange {
    /** Byte range of the ciphertext to fetch from the backend, inclusive. */
    cipherStart: number;
    cipherEnd: number;
}

/** Which whole segments a plaintext byte range [start, end] (inclusive) of an object needs. */
export function planRange(start: number, end: number, plainLength: number, segmentSize: number): CipherRange {
    if (!(start >= 0 && start <= end && end < plainLength)) {
        throw new RangeError(`bytes ${start}-${end} are outside 0-${plainLength - 1}`);
    }
    const sealed = segmentSize + TAG_BYTES;
    const firstSegment = Math.floor(start / segmentSize);
    const lastSegment = Math.floor(end / segmentSize);
    const finalSegment = segmentCount(plainLength, segmentSize) - 1;
    const lastSegmentPlain = Math.min(segmentSize, plainLength - lastSegment * segmentSize);
    return {
        firstSegment,
        lastSegment,
        finalSegment,
        lastSealed: lastSegmentPlain + TAG_BYTES,
        skip: start - firstSegment * segmentSize,
        length: end - start + 1,
        cipherStart: firstSegment * sealed,
        cipherEnd: lastSegment * sealed + lastSegmentPlain + TAG_BYTES - 1,
    };
}

/** The range of a whole object (for an empty object: its one empty final segment). */
export function wholeObject(plainLength: number, segmentSize: number): OpenRange {
    const finalSegment = segmentCount(plainLength, segmentSize) - 1;
    const lastSealed = plainLength - finalSegment * segmentSize + TAG_BYTES;
    return { firstSegment: 0, lastSegment: finalSegment, finalSegment, lastSealed, skip: 0, length: plainLength };
}
