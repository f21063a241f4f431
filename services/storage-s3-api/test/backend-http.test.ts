// The backend client's GET handler against real HTTP servers on loopback: framing, kept-alive connections
// and how it fails.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import type { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { HttpRequest } from "@smithy/core/protocols";
import { BackendHttpHandler } from "../src/backend-http";
import { backendClient } from "../src/settings";

/** Every connection the test servers accepted, closed at the end so that none keeps the tests running. */
const accepted: net.Socket[] = [];

async function listening<T extends net.Server>(
    server: T,
): Promise<{ server: T; port: number; connections: () => number }> {
    let connections = 0;
    server.on("connection", (socket: net.Socket) => {
        connections++;
        accepted.push(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { server, port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

function request(port: number, method = "GET", body?: string) {
    return new HttpRequest({
        protocol: "http:",
        hostname: "127.0.0.1",
        port,
        method,
        path: "/bucket/key",
        query: { "x-id": "GetObject" },
        headers: {},
        body,
    });
}

async function read(body: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}

describe("backend GET handler", () => {
    const handler = new BackendHttpHandler();
    const servers: net.Server[] = [];
    after(() => {
        handler.destroy();
        for (const server of servers) server.close();
        for (const socket of accepted) socket.destroy();
    });
    const serve = async (server: net.Server) => {
        servers.push(server);
        return listening(server);
    };
    /** A backend that answers a connection's first bytes with `raw`, then closes it unless told to keep it open. */
    const answering = (raw: string, keepOpen = false) =>
        serve(
            net.createServer((socket) => socket.once("data", () => (keepOpen ? socket.write(raw) : socket.end(raw)))),
        );

    it("reads a body of known length and keeps the connection for the next GET", async () => {
        const content = randomBytes(3 * 1024 * 1024 + 7);
        const seen: string[] = [];
        const { port, connections } = await serve(
            http.createServer((req, res) => {
                seen.push(`${req.method} ${req.url}`);
                res.writeHead(200, { "content-length": content.length, etag: '"e"' }).end(content);
            }),
        );
        for (let i = 0; i < 3; i++) {
            const { response } = await handler.handle(request(port));
            assert.equal(response.statusCode, 200);
            assert.equal(response.headers.etag, '"e"');
            assert.ok((await read(response.body as Readable)).equals(content));
        }
        assert.deepEqual(seen, Array(3).fill("GET /bucket/key?x-id=GetObject"));
        assert.equal(connections(), 1, "one connection for three GETs");
    });

    it("reads a large body in reads of up to 1 MiB, and stops reading while its reader does", async () => {
        const content = randomBytes(32 * 1024 * 1024);
        const { port } = await serve(
            http.createServer((_req, res) => res.writeHead(200, { "content-length": content.length }).end(content)),
        );
        const body = (await handler.handle(request(port))).response.body as Readable;
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.ok(body.readableLength <= 2 * 1024 * 1024, `${body.readableLength} bytes read ahead of the reader`);
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(chunk as Buffer);
        assert.ok(Buffer.concat(chunks).equals(content));
        const largest = Math.max(...chunks.map((c) => c.length));
        assert.ok(largest > 512 * 1024 && largest <= 1024 * 1024, `largest read ${largest} bytes`);
    });

    it("reads a 1 MiB body into one or two slabs, not a buffer per read", async () => {
        const content = randomBytes(1024 * 1024);
        const { port } = await serve(
            http.createServer((_req, res) => res.writeHead(200, { "content-length": content.length }).end(content)),
        );
        for (let i = 0; i < 3; i++) {
            const body = (await handler.handle(request(port))).response.body as Readable;
            const chunks: Buffer[] = [];
            for await (const chunk of body) chunks.push(chunk as Buffer);
            assert.ok(Buffer.concat(chunks).equals(content));
            const slabs = new Set(chunks.map((c) => c.buffer)).size;
            assert.ok(slabs <= 2, `${chunks.length} reads in ${slabs} buffers`);
        }
    });

    it("is what the service's S3 client reads GetObject with, signed by the SDK", async () => {
        const seen: { method?: string; connection?: string; signed: boolean }[] = [];
        const { port } = await serve(
            http.createServer((req, res) => {
                seen.push({
                    method: req.method,
                    connection: req.headers.connection,
                    signed: /^AWS4-HMAC-SHA256 Credential=id\//.test(req.headers.authorization ?? ""),
                });
                req.resume();
                const body = req.method === "GET" ? "hello" : "";
                res.writeHead(200, { "content-length": body.length, etag: '"e"' }).end(body);
            }),
        );
        const client = backendClient(`http://127.0.0.1:${port}`, "us-east-1", {
            accessKeyId: "id",
            secretAccessKey: "s",
        });
        const got = await client.send(new GetObjectCommand({ Bucket: "bucket", Key: "key" }));
        assert.equal(await got.Body?.transformToString(), "hello");
        await client.send(new PutObjectCommand({ Bucket: "bucket", Key: "key", Body: "x" }));
        client.destroy();
        // node:http's agent says "keep-alive" on every request; this handler's GET does not.
        assert.deepEqual(seen, [
            { method: "GET", connection: undefined, signed: true },
            { method: "PUT", connection: "keep-alive", signed: true },
        ]);
    });

    it("keeps at most 64 idle connections to a backend", async () => {
        let closed = 0;
        const { server, port, connections } = await serve(
            http.createServer((_req, res) =>
                setTimeout(() => res.writeHead(200, { "content-length": 2 }).end("ok"), 50),
            ),
        );
        server.on("connection", (socket: net.Socket) => socket.on("close", () => closed++));
        const bodies = await Promise.all(
            Array.from({ length: 70 }, async () =>
                read((await handler.handle(request(port))).response.body as Readable),
            ),
        );
        assert.ok(bodies.every((b) => b.toString() === "ok"));
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.deepEqual({ opened: connections(), closed }, { opened: 70, closed: 6 });
    });

    it("decodes a chunked body and keeps the connection after its last chunk", async () => {
        const pieces = [randomBytes(10), randomBytes(70_000), randomBytes(1)];
        const { port, connections } = await serve(
            http.createServer((_req, res) => {
                res.writeHead(200, { "content-type": "application/xml" });
                for (const piece of pieces) res.write(piece);
                res.end();
            }),
        );
        for (let i = 0; i < 2; i++) {
            const { response } = await handler.handle(request(port));
            assert.equal(response.headers["transfer-encoding"], "chunked");
            assert.ok((await read(response.body as Readable)).equals(Buffer.concat(pieces)));
        }
        assert.equal(connections(), 1);
    });

    it("hands error answers to the SDK as they are, and sends other methods through node:http", async () => {
        const { port } = await serve(
            http.createServer((req, res) => {
                let body = "";
                req.on("data", (d: Buffer) => (body += d.toString()));
                req.on("end", () => {
                    if (req.method === "PUT") res.writeHead(200, { "x-got": body }).end();
                    else res.writeHead(404).end("<Error><Code>NoSuchKey</Code></Error>");
                });
            }),
        );
        const missing = (await handler.handle(request(port))).response;
        assert.equal(missing.statusCode, 404);
        assert.equal((await read(missing.body as Readable)).toString(), "<Error><Code>NoSuchKey</Code></Error>");
        const put = (await handler.handle(request(port, "PUT", "hello"))).response;
        assert.equal(put.headers["x-got"], "hello");
    });

    it("reads a body that ends with its connection, and answers without a body", async () => {
        const { port, connections } = await serve(
            net.createServer((socket) =>
                socket.on("data", (d: Buffer) => {
                    if (d.includes("/bucket/key?"))
                        socket.end("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end");
                    else socket.write('HTTP/1.1 304 Not Modified\r\netag: "e"\r\n\r\n');
                }),
            ),
        );
        const { response } = await handler.handle(request(port));
        assert.equal((await read(response.body as Readable)).toString(), "until the end");
        const notModified = request(port);
        notModified.path = "/bucket/other";
        for (let i = 0; i < 2; i++) {
            const { response: unchanged } = await handler.handle(notModified);
            assert.equal(unchanged.statusCode, 304);
            assert.equal((await read(unchanged.body as Readable)).length, 0);
        }
        assert.equal(connections(), 2, "the closed connection is not reused; the 304's is");
    });

    it("does not keep a connection whose body was left unread", async () => {
        const { port, connections } = await serve(
            http.createServer((_req, res) =>
                res.writeHead(200, { "content-length": 8 << 20 }).end(Buffer.alloc(8 << 20)),
            ),
        );
        const first = (await handler.handle(request(port))).response.body as Readable;
        await new Promise((resolve) => first.once("data", resolve));
        first.destroy();
        const { response } = await handler.handle(request(port));
        assert.equal((await read(response.body as Readable)).length, 8 << 20);
        assert.equal(connections(), 2);
    });

    it("sends a GET again on a new connection when the backend closed the kept one", async () => {
        // Answers the first request on each connection, and closes it on the second without answering.
        const { port, connections } = await serve(
            net.createServer((socket) => {
                let requests = 0;
                socket.on("data", () => {
                    if (++requests === 1) socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                    else socket.destroy();
                });
            }),
        );
        for (let i = 0; i < 2; i++) {
            const { response } = await handler.handle(request(port));
            assert.equal((await read(response.body as Readable)).toString(), "ok");
        }
        assert.equal(connections(), 2);
    });

    it("fails the body, not with fewer bytes, when the backend closes before its end", async () => {
        const { port } = await answering("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten..");
        const { response } = await handler.handle(request(port));
        await assert.rejects(read(response.body as Readable), /closed the connection before the body's end/);
    });

    it("fails the body when the backend's chunked framing is broken", async () => {
        const { port } = await answering(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n3\nabc\r\n0\r\n\r\n",
            true,
        );
        const { response } = await handler.handle(request(port));
        await assert.rejects(read(response.body as Readable), /the backend sent a chunk line not ended by CRLF/);
    });

    /** A backend that answers /bucket/whole, sends half of /bucket/key's body, and stays silent otherwise. */
    const halfSilent = async () => {
        const silent = { requests: 0, asked: [] as (() => void)[] };
        const { port } = await serve(
            net.createServer((socket) =>
                socket.on("data", (d: Buffer) => {
                    if (d.includes("/bucket/key?")) socket.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf.");
                    else if (d.includes("/bucket/whole?"))
                        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                    else {
                        silent.requests++;
                        silent.asked.shift()?.();
                    }
                }),
            ),
        );
        const at = (path: string) => Object.assign(request(port), { path });
        /** A GET of /bucket/whole, read to its end, so the next GET goes on its kept connection. */
        const whole = async () =>
            assert.equal(
                (await read((await handler.handle(at("/bucket/whole"))).response.body as Readable)).toString(),
                "ok",
            );
        return { port, silent, at, whole };
    };

    it("gives up on a backend that stays silent longer than the request timeout, and does not ask again", async () => {
        const { port, silent, at, whole } = await halfSilent();
        const { response } = await handler.handle(request(port), { requestTimeout: 200 });
        await assert.rejects(read(response.body as Readable), /sent nothing for 200 ms/);
        await whole();
        await assert.rejects(handler.handle(at("/bucket/silent"), { requestTimeout: 200 }), { name: "TimeoutError" });
        assert.equal(silent.requests, 1, "a kept connection that timed out is not taken for a stale one");
    });

    it("stops when the SDK aborts, before the answer or during its body", async () => {
        const { port, silent, at, whole } = await halfSilent();
        const during = new AbortController();
        const { response } = await handler.handle(request(port), { abortSignal: during.signal });
        const reading = read(response.body as Readable);
        during.abort();
        await assert.rejects(reading, { name: "AbortError" });
        await whole();
        const before = new AbortController();
        const asked = new Promise<void>((resolve) => silent.asked.push(resolve));
        const answer = handler.handle(at("/bucket/silent"), { abortSignal: before.signal });
        await asked;
        before.abort();
        await assert.rejects(answer, { name: "AbortError" });
        assert.equal(silent.requests, 1);
    });

    it("reads any header name as a header, even one named like an object's property", async () => {
        const { port } = await answering(
            "HTTP/1.1 200 OK\r\n__proto__: a\r\nconstructor: b\r\nx-twice: 1\r\nx-twice: 2\r\ncontent-length: 0\r\n\r\n",
        );
        const { headers } = (await handler.handle(request(port))).response;
        assert.deepEqual(
            ["__proto__", "constructor", "x-twice"].map((name) => headers[name]),
            ["a", "b", "1, 2"],
        );
    });

    it("refuses an answer that is not HTTP or has a malformed Content-Length, and a header holding a line break", async () => {
        const { port } = await answering("SSH-2.0\r\n\r\n");
        await assert.rejects(handler.handle(request(port)), /not HTTP\/1\.x/);
        const { port: lying } = await answering("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n");
        await assert.rejects(handler.handle(request(lying)), /malformed Content-Length/);
        const injected = request(port);
        injected.headers["x-amz-meta-a"] = "b\r\nx-evil: 1";
        await assert.rejects(handler.handle(injected), /line break/);
    });
});
