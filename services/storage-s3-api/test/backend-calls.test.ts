// The service's own backend calls (GET, HEAD, whole-body PUT) against real backends, with the AWS SDK as the
// oracle: what they write the SDK reads back the same, what they read equals what the SDK reads, and they fail
// and retry as the SDK does.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import type { Readable } from "node:stream";
import {
    CreateBucketCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
} from "@aws-sdk/client-s3";
import { describeEachS3Backend, type S3Server, s3Client, startS3Backend } from "@peoples-cloud/testkit";
import { BackendCalls } from "../src/backend-calls";
import { backendClient } from "../src/settings";

async function read(body: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}

const named = (name: string, status: number) => (err: unknown) => {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(e.name, name);
    assert.equal(e.$metadata?.httpStatusCode, status);
    return true;
};

describeEachS3Backend("backend calls without the SDK", function (kind) {
    this.timeout(60_000);
    let backend: S3Server;
    let calls: BackendCalls;
    let sdk: ReturnType<typeof s3Client>;
    const keys = ["plain", "a/b/c.txt", "spaces and+plus=eq&amp", "ünïcödé/✓", "odd!'()*~;:@,$[]", "%41 not an escape"];

    before(async () => {
        backend = await startS3Backend(kind);
        const credentials = { accessKeyId: backend.accessKeyId, secretAccessKey: backend.secretAccessKey };
        calls = new BackendCalls(backendClient(backend.url, "us-east-1", credentials, { maxAttempts: 1 }));
        sdk = s3Client(backend.url, backend.accessKeyId, backend.secretAccessKey);
        await sdk.send(new CreateBucketCommand({ Bucket: "calls" }));
    });
    after(() => backend.stop());

    it("writes what the SDK reads back, under names that need encoding", async () => {
        for (const key of keys) {
            const body = randomBytes(5000);
            const metadata = { "pce-id": randomBytes(16).toString("base64url"), "pce-x": "a value, with spaces" };
            const put = await calls.putObject({
                Bucket: "calls",
                Key: key,
                Body: body,
                ContentType: "application/octet-stream",
                Metadata: metadata,
            });
            const got = await sdk.send(new GetObjectCommand({ Bucket: "calls", Key: key }));
            assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body, key);
            assert.deepEqual(got.Metadata, metadata, key);
            assert.equal(got.ETag, put.ETag, key);
        }
        const listed = await sdk.send(new ListObjectsV2Command({ Bucket: "calls" }));
        assert.deepEqual((listed.Contents ?? []).map((o) => o.Key).sort(), [...keys].sort());
    });

    it("reads what the SDK reads: body, metadata, length, date and ETag; a range; a HEAD", async () => {
        const body = randomBytes(70_000);
        const Metadata = { "pce-m": randomBytes(40).toString("base64url") };
        await sdk.send(new PutObjectCommand({ Bucket: "calls", Key: "read/me", Body: body, Metadata }));
        const oracle = await sdk.send(new HeadObjectCommand({ Bucket: "calls", Key: "read/me" }));
        const got = await calls.getObject({ Bucket: "calls", Key: "read/me" });
        assert.deepEqual(await read(got.Body), body);
        const head = await calls.headObject({ Bucket: "calls", Key: "read/me" });
        for (const h of [got, head]) {
            assert.deepEqual(h.Metadata, oracle.Metadata);
            assert.equal(h.ContentLength, oracle.ContentLength);
            assert.equal(h.ETag, oracle.ETag);
            assert.equal(h.LastModified?.getTime(), oracle.LastModified?.getTime());
        }
        const ranged = await calls.getObject({
            Bucket: "calls",
            Key: "read/me",
            Range: "bytes=100-60099",
            IfMatch: oracle.ETag,
        });
        assert.deepEqual(await read(ranged.Body), body.subarray(100, 60_100));
    });

    it("fails as the SDK does: NoSuchKey, NotFound for a HEAD, NoSuchBucket, PreconditionFailed", async () => {
        await assert.rejects(calls.getObject({ Bucket: "calls", Key: "missing" }), named("NoSuchKey", 404));
        await assert.rejects(calls.headObject({ Bucket: "calls", Key: "missing" }), named("NotFound", 404));
        await assert.rejects(calls.getObject({ Bucket: "no-such-bucket", Key: "k" }), named("NoSuchBucket", 404));
        await assert.rejects(
            calls.getObject({ Bucket: "calls", Key: "plain", IfMatch: '"0123456789abcdef0123456789abcdef"' }),
            named("PreconditionFailed", 412),
        );
        await assert.rejects(
            calls.putObject({ Bucket: "calls", Key: "plain", Body: Buffer.from("x"), IfNoneMatch: "*" }),
            named("PreconditionFailed", 412),
        );
        // The connection stays usable after every error answer.
        assert.equal((await calls.headObject({ Bucket: "calls", Key: "plain" })).ContentLength, 5000);
    });
});

describe("backend calls' retries", () => {
    /** A backend that answers the first `failures` requests with 503 SlowDown, then 200. */
    async function flaky(failures: number) {
        let requests = 0;
        const server = net.createServer((socket) => {
            sockets.push(socket);
            socket.on("data", (data: Buffer) => {
                // One answer per request head (a PUT's body comes with its head, in the same write).
                const heads = data.toString("latin1").match(/ HTTP\/1\.1\r\n/g) ?? [];
                for (let i = 0; i < heads.length; i++) {
                    requests++;
                    const body =
                        requests <= failures ? "<Error><Code>SlowDown</Code><Message>slow down</Message></Error>" : "";
                    const status = requests <= failures ? "503 Slow Down" : "200 OK";
                    socket.write(`HTTP/1.1 ${status}\r\nETag: "e"\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
                }
            });
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
        servers.push(server);
        return { url, requests: () => requests };
    }
    const credentials = { accessKeyId: "k", secretAccessKey: "s" };
    const servers: net.Server[] = [];
    const sockets: net.Socket[] = [];
    after(() => {
        for (const socket of sockets) socket.destroy();
        for (const server of servers) server.close();
    });

    it("retries a 503 as the SDK does, up to its attempts", async () => {
        const twice = await flaky(2);
        const retrying = new BackendCalls(backendClient(twice.url, "us-east-1", credentials, { maxAttempts: 3 }));
        assert.equal((await retrying.putObject({ Bucket: "b", Key: "k", Body: Buffer.from("x") })).ETag, '"e"');
        assert.equal(twice.requests(), 3);

        const once = await flaky(2);
        const single = new BackendCalls(backendClient(once.url, "us-east-1", credentials, { maxAttempts: 1 }));
        await assert.rejects(single.headObject({ Bucket: "b", Key: "k" }), named("Unknown", 503));
        await assert.rejects(
            single.getObject({ Bucket: "b", Key: "k" }).then(() => {}),
            named("SlowDown", 503),
        );
    });
});
