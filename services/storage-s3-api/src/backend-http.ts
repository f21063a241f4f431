// The backend client's HTTP handler. GET responses are read off a plain kept-alive socket, in reads of up to
// 1 MiB, and their bodies handed on as the socket delivers them: node:http's parser copies every body chunk it
// passes up, and with its stream that was about a quarter of the service's CPU on GET. Every other request
// the SDK sends goes to its own NodeHttpHandler; the SDK still signs, retries and parses every response. The
// service's own small calls (backend-calls.ts) go through `send` on the same connections.
import * as net from "node:net";
import { Readable } from "node:stream";
import * as tls from "node:tls";
import { buildQueryString, type HttpHandler, type HttpRequest, HttpResponse } from "@smithy/core/protocols";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { HttpHandlerOptions, NodeHttpHandlerOptions } from "@smithy/types";
import { ChunkedFraming } from "./chunked-framing";

const MAX_HEAD_BYTES = 64 * 1024;
/** How long a kept-alive connection waits for its next request. */
const IDLE_MS = 15_000;
/** How many idle connections are kept per backend; more are closed. */
const MAX_IDLE = 64;

interface Listeners {
    data?: (chunk: Buffer) => void;
    error?: (err: Error) => void;
    end?: () => void;
    close?: () => void;
    timeout?: () => void;
}

/** Adds listeners to a socket; returns what removes them (the socket's own listeners stay). */
function listen(socket: net.Socket, listeners: Listeners): () => void {
    const entries = Object.entries(listeners) as [string, () => void][];
    for (const [event, listener] of entries) socket.on(event, listener);
    return () => {
        for (const [event, listener] of entries) socket.removeListener(event, listener);
    };
}

const aborted = () => Object.assign(new Error("Request aborted"), { name: "AbortError" });
const timedOut = (ms?: number) =>
    Object.assign(new Error(`the backend sent nothing for ${ms} ms`), { name: "TimeoutError" });

/** A kept-alive connection the backend closed while it was idle: the GET is sent again on a new one. */
class StaleConnection extends Error {}

interface Head {
    status: number;
    reason: string;
    headers: Record<string, string>;
    keepAlive: boolean;
}

function parseHead(text: string): Head {
    const [statusLine, ...lines] = text.split("\r\n");
    const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!status) throw new Error("the backend's answer is not HTTP/1.x");
    // No prototype: a header called "__proto__" or "constructor" is just a header.
    const headers = Object.create(null) as Record<string, string>;
    for (const line of lines) {
        const colon = line.indexOf(":");
        if (colon <= 0) throw new Error("the backend's answer has a malformed header");
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers[name] = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value;
    }
    const connection = (headers.connection ?? "").toLowerCase();
    const keepAlive = status[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
    return { status: Number(status[2]), reason: status[3] ?? "", headers, keepAlive };
}

/** A request as it goes on the wire: its target (path and query, encoded), headers, and a body held whole. */
export interface RawRequest {
    protocol: string;
    hostname: string;
    port?: number;
    method: "GET" | "HEAD" | "PUT";
    target: string;
    headers: Record<string, string>;
    body?: Buffer;
}

/** An answer's head, and its body as a stream (empty for a HEAD). */
export interface RawResponse {
    status: number;
    reason: string;
    headers: Record<string, string>;
    body: Readable;
}

function requestHead(request: RawRequest): string {
    const headers = Object.entries(request.headers);
    if (!headers.some(([name]) => name.toLowerCase() === "host")) {
        headers.push(["host", request.port ? `${request.hostname}:${request.port}` : request.hostname]);
    }
    if (request.body && !headers.some(([name]) => name.toLowerCase() === "content-length")) {
        headers.push(["content-length", String(request.body.length)]);
    }
    if (headers.some(([name, value]) => /[\r\n]/.test(name + value))) throw new Error("a header holds a line break");
    const lines = headers.map(([name, value]) => `${name}: ${value}\r\n`).join("");
    return `${request.method} ${request.target} HTTP/1.1\r\n${lines}\r\n`;
}

export class BackendHttpHandler implements HttpHandler<NodeHttpHandlerOptions> {
    readonly metadata = { handlerProtocol: "http/1.1" };
    private readonly others = new NodeHttpHandler();
    /** Kept-alive connections by origin, each with what stops watching it while idle. */
    private readonly idle = new Map<string, { socket: net.Socket; unwatch: () => void }[]>();

    handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
        if (request.method !== "GET" || request.body != null) return this.others.handle(request, options);
        const query = buildQueryString(request.query ?? {});
        const { protocol, hostname, port, headers } = request;
        const target = `${request.path}${query ? `?${query}` : ""}`;
        return this.send({ protocol, hostname, port, method: "GET", target, headers }, options).then(
            ({ status, reason, headers, body }) => ({
                response: new HttpResponse({ statusCode: status, reason, headers, body }),
            }),
        );
    }

    updateHttpClientConfig(key: keyof NodeHttpHandlerOptions, value: NodeHttpHandlerOptions[typeof key]): void {
        this.others.updateHttpClientConfig(key, value);
    }

    httpHandlerConfigs(): NodeHttpHandlerOptions {
        return this.others.httpHandlerConfigs();
    }

    destroy(): void {
        this.others.destroy();
        for (const sockets of this.idle.values()) for (const { socket } of sockets) socket.destroy();
        this.idle.clear();
    }

    /**
     * Sends a request on a kept-alive connection and resolves once the answer's head has arrived; its body follows
     * as a stream. A request on a kept connection the backend had closed is sent again on a new one.
     */
    async send(request: RawRequest, options: HttpHandlerOptions = {}): Promise<RawResponse> {
        const origin = `${request.protocol}//${request.hostname}:${request.port ?? ""}`;
        const head = requestHead(request);
        const kept = this.idle.get(origin)?.pop();
        kept?.unwatch();
        const exchange = (socket: net.Socket, reused: boolean) =>
            this.exchange(socket, origin, head, request, options, reused);
        try {
            return await exchange(kept?.socket ?? connect(request), kept !== undefined);
        } catch (err) {
            if (err instanceof StaleConnection) return exchange(connect(request), false);
            throw err;
        }
    }

    /** Sends the request and resolves once the response's head has arrived; the body follows as a stream. */
    private exchange(
        socket: net.Socket,
        origin: string,
        requestHead: string,
        request: RawRequest,
        options: HttpHandlerOptions,
        kept: boolean,
    ): Promise<RawResponse> {
        return new Promise((resolve, reject) => {
            let received: Buffer = Buffer.alloc(0);
            let unlisten = () => {};
            const fail = (err: Error) => {
                unlisten();
                socket.on("error", () => {});
                socket.destroy();
                const closedUnasked =
                    kept && received.length === 0 && !["AbortError", "TimeoutError"].includes(err.name);
                reject(closedUnasked ? new StaleConnection(err.message) : err);
            };
            const signal = options.abortSignal as AbortSignal | undefined;
            if (signal?.aborted) return fail(aborted());
            const onAbort = () => fail(aborted());
            signal?.addEventListener?.("abort", onAbort, { once: true });
            const onData = (chunk: Buffer) => {
                received = received.length ? Buffer.concat([received, chunk]) : chunk;
                try {
                    for (;;) {
                        const end = received.indexOf("\r\n\r\n");
                        if (end < 0) {
                            if (received.length > MAX_HEAD_BYTES)
                                throw new Error("the backend's answer head is too long");
                            return;
                        }
                        const head = parseHead(received.toString("latin1", 0, end));
                        received = received.subarray(end + 4);
                        if (head.status < 200) continue; // 100 Continue and other interim answers
                        signal?.removeEventListener?.("abort", onAbort);
                        unlisten();
                        const body = this.body(socket, origin, head, received, options, request.method === "HEAD");
                        resolve({ status: head.status, reason: head.reason, headers: head.headers, body });
                        return;
                    }
                } catch (err) {
                    fail(err as Error);
                }
            };
            unlisten = listen(socket, {
                data: onData,
                error: fail,
                close: () => fail(new Error("the backend closed the connection before answering")),
                timeout: () => fail(timedOut(options.requestTimeout)),
            });
            // As NodeHttpHandler reads requestTimeout: how long the connection may stay silent.
            socket.setTimeout(options.requestTimeout ?? 0);
            if (request.body) {
                // Head and body in one write.
                socket.cork();
                socket.write(requestHead);
                socket.write(request.body);
                socket.uncork();
            } else {
                socket.write(requestHead);
            }
        });
    }

    /** The response body as a stream; the connection is kept for the next request once the body has ended. */
    private body(
        socket: net.Socket,
        origin: string,
        head: Head,
        first: Buffer,
        options: HttpHandlerOptions,
        headRequest: boolean,
    ): Readable {
        const chunked = /chunked/i.test(head.headers["transfer-encoding"] ?? "");
        const length = chunked ? undefined : head.headers["content-length"];
        let left = Number(length ?? 0);
        if (!Number.isSafeInteger(left) || left < 0) throw new Error("the backend sent a malformed Content-Length");
        let ended = false;
        let unlisten = () => {};
        const signal = options.abortSignal as AbortSignal | undefined;
        const onAbort = () => body.destroy(aborted());
        const body = new Readable({
            read: () => {
                if (!ended) socket.resume();
            },
            destroy: (err, done) => {
                signal?.removeEventListener?.("abort", onAbort);
                if (!ended) socket.destroy();
                done(err);
            },
        });
        // As node:http's IncomingMessage: an error before anyone listens does not throw from the event loop; it
        // stays in the stream's `errored` state, which pipeline() and async iteration report to a later reader.
        body.on("error", () => {});
        signal?.addEventListener?.("abort", onAbort, { once: true });
        const emit = (data: Buffer) => {
            if (data.length > 0 && !body.push(data)) socket.pause();
        };
        /** Ends the body; the connection is kept only if the backend said so and sent nothing beyond it. */
        const finish = (after: Buffer, reusable = head.keepAlive) => {
            ended = true;
            unlisten();
            signal?.removeEventListener?.("abort", onAbort);
            socket.setTimeout(0);
            body.push(null);
            if (reusable && after.length === 0) this.keep(origin, socket);
            else socket.destroy();
        };
        if (headRequest || head.status === 204 || head.status === 304 || (length !== undefined && left === 0)) {
            finish(first);
            return body;
        }
        const decoder = chunked
            ? new ChunkedFraming(
                  { chunk: () => {}, data: emit, trailer: () => {} },
                  (what) => new Error(`the backend sent ${what}`),
              )
            : undefined;
        const feed = (chunk: Buffer) => {
            if (decoder) {
                const after = decoder.feed(chunk);
                if (after) finish(after);
            } else if (length !== undefined) {
                const n = Math.min(left, chunk.length);
                left -= n;
                emit(n === chunk.length ? chunk : chunk.subarray(0, n));
                if (left === 0) finish(chunk.subarray(n));
            } else {
                emit(chunk); // the body ends when the connection does
            }
        };
        const onData = (chunk: Buffer) => {
            try {
                feed(chunk);
            } catch (err) {
                unlisten();
                body.destroy(err as Error);
            }
        };
        unlisten = listen(socket, {
            data: onData,
            error: (err: Error) => body.destroy(err),
            timeout: () => body.destroy(timedOut(options.requestTimeout)),
            close: () => {
                if (ended) return;
                if (!decoder && length === undefined) finish(Buffer.alloc(0), false);
                else body.destroy(new Error("the backend closed the connection before the body's end"));
            },
        });
        if (first.length > 0) onData(first);
        return body;
    }

    /** Keeps a connection for the next request to the same backend, until it idles too long or the backend closes it. */
    private keep(origin: string, socket: net.Socket): void {
        const sockets = this.idle.get(origin) ?? [];
        this.idle.set(origin, sockets);
        if (sockets.length >= MAX_IDLE) {
            socket.destroy();
            return;
        }
        const drop = () => {
            const at = sockets.indexOf(entry);
            if (at >= 0) sockets.splice(at, 1);
            entry.unwatch();
            socket.on("error", () => {});
            socket.destroy();
        };
        // Anything the backend sends to an idle connection, its closing included, ends it.
        const unlisten = listen(socket, { data: drop, end: drop, error: drop, close: drop, timeout: drop });
        const entry = {
            socket,
            unwatch: () => {
                unlisten();
                socket.setTimeout(0);
                socket.ref();
            },
        };
        sockets.push(entry);
        socket.setTimeout(IDLE_MS);
        socket.unref();
        socket.resume();
    }
}

function connect(request: { protocol: string; hostname: string; port?: number }): net.Socket {
    const host = request.hostname;
    const socket =
        request.protocol === "https:"
            ? tls.connect({ host, port: request.port ?? 443, servername: net.isIP(host) ? undefined : host })
            : plainConnection(request.port ?? 80, host);
    socket.setNoDelay(true);
    return socket;
}

const MIN_READ = 64 * 1024;
const MAX_READ = 1024 * 1024;

/**
 * A TCP connection that reads up to 1 MiB at a time where node:net reads 64 KiB: each read has a cost of its
 * own (a bare Node relay spent 0.9–1.0 CPU-s per GiB reading 64 KiB at a time, 0.5 reading up to 1 MiB).
 * Reads grow while they fill their buffer; one that brings less than a quarter of it is copied out, and the
 * next read is a small one again. Longer reads go one after another into a 1 MiB slab and are emitted as views
 * of it, as node:net emits 'data': a 1 MiB answer costs one allocation (a buffer per read, and the 1 MiB one
 * allocated ahead for a short last read, were a third of the external memory a 1 MiB GET allocated, and so of
 * its garbage collections).
 */
export function plainConnection(port: number, host: string): net.Socket {
    let size = MIN_READ;
    let slab = Buffer.allocUnsafeSlow(MAX_READ);
    let at = 0;
    const next = () => {
        if (slab.length - at < MIN_READ) {
            slab = Buffer.allocUnsafeSlow(MAX_READ);
            at = 0;
        }
        return slab.subarray(at, at + size);
    };
    let buffer = next();
    const socket: net.Socket = net.connect({
        port,
        host,
        onread: {
            buffer: () => buffer,
            // A listener that pauses the socket stops its reading; returning true does not undo that.
            callback: (n: number, read: Uint8Array) => {
                const bytes = Buffer.from(read.buffer, read.byteOffset, n);
                if (n < read.length / 4) {
                    // A short read (an answer's head, a small body) is copied out and its space read into again.
                    size = MIN_READ;
                    buffer = next();
                    socket.emit("data", Buffer.from(bytes));
                    return true;
                }
                at += n;
                if (n === read.length) size = Math.min(2 * size, MAX_READ);
                buffer = next();
                socket.emit("data", bytes);
                return true;
            },
        },
    });
    return socket;
}
