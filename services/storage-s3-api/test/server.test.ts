// The service end to end with the AWS SDK as the client, a real S3 backend behind it (SeaweedFS, MinIO) and real
// OpenBao for keys.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
    AbortMultipartUploadCommand,
    CompleteMultipartUploadCommand,
    CopyObjectCommand,
    CreateBucketCommand,
    CreateMultipartUploadCommand,
    DeleteObjectCommand,
    DeleteObjectsCommand,
    GetBucketAclCommand,
    GetBucketLocationCommand,
    GetBucketVersioningCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectsV2Command,
    ListPartsCommand,
    PutObjectCommand,
    type S3Client,
    UploadPartCommand,
} from "@aws-sdk/client-s3";
import {
    baoApi,
    describeEachS3Backend,
    type OpenBaoServer,
    type S3Server,
    reusesIdleConnection,
    s3Backends,
    s3Client,
} from "@peoples-cloud/testkit";
import { EncryptedObjects } from "../src/objects";
import { type Chain, filesUnder, type RunningService, startChain, status } from "./chain";
import { presignedGetUrl } from "./signer";
import { TransitClient } from "../src/vault";

const client = s3Client;

describeEachS3Backend("storage-s3-api with OpenBao", function (kind) {
    this.timeout(120_000);
    let chain: Chain;
    let backend: S3Server;
    let bao: OpenBaoServer;
    let service: RunningService;
    let transit: TransitClient;
    let s3: S3Client;
    let direct: S3Client;

    before(async () => {
        chain = await startChain(kind);
        ({ backend, bao, transit, direct } = chain);
        service = await chain.startService();
        ({ s3 } = service);
        await s3.send(new CreateBucketCommand({ Bucket: "photos" }));
    });
    /** What a backend that tampers does: rewrite an object's bytes, keeping its metadata. */
    async function rewriteAtBackend(key: string, change: (bytes: Buffer) => Buffer): Promise<void> {
        const stored = await direct.send(new GetObjectCommand({ Bucket: "photos", Key: key }));
        const bytes = change(Buffer.from(await stored.Body!.transformToByteArray()));
        await direct.send(new PutObjectCommand({ Bucket: "photos", Key: key, Body: bytes, Metadata: stored.Metadata }));
    }

    async function readThroughService(key: string): Promise<Buffer> {
        const got = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: key }));
        return Buffer.from(await got.Body!.transformToByteArray());
    }

    after(async () => {
        await chain?.stop();
    });

    const sizes = [0, 1, 65_535, 65_536, 65_537, 200_003];
    for (const size of sizes) {
        it(`stores and returns ${size} bytes, encrypted at rest`, async () => {
            const body = randomBytes(size);
            const key = `2026/summer/${size}.bin`;
            const put = await s3.send(
                new PutObjectCommand({
                    Bucket: "photos",
                    Key: key,
                    Body: body,
                    ContentType: "image/jpeg",
                    Metadata: { owner: "ana" },
                }),
            );
            // S3's ETag for a single PUT: the MD5 of the plaintext (sealed at the backend, see etag.test.ts).
            assert.equal(put.ETag, `"${createHash("md5").update(body).digest("hex")}"`);
            const got = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: key }));
            assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
            assert.equal(got.ContentType, "image/jpeg");
            assert.deepEqual(got.Metadata, { owner: "ana" });
            assert.equal(got.ETag, put.ETag);

            const atBackend = await direct.send(new HeadObjectCommand({ Bucket: "photos", Key: key }));
            assert.equal(atBackend.ContentType, "application/octet-stream", "the backend learned the content type");
            assert.equal(atBackend.Metadata?.owner, undefined, "the backend learned user metadata");
        });
    }

    it("leaves no 16-byte window of any plaintext in the backend's files", async () => {
        const plain = Buffer.from("Grandma's recipe: 3 eggs, 200 g flour, a pinch of salt. ".repeat(50));
        await s3.send(
            new PutObjectCommand({
                Bucket: "photos",
                Key: "recipes/cake.txt",
                Body: plain,
                ContentType: "text/x-secret-type",
            }),
        );
        const stored = Buffer.concat(filesUnder(backend.dir).map((f) => f.bytes));
        const windows = new Set<string>();
        for (const text of [plain, Buffer.from("text/x-secret-type")]) {
            for (let i = 0; i + 16 <= text.length; i += 8) windows.add(text.subarray(i, i + 16).toString("hex"));
        }
        const hex = stored.toString("hex");
        assert.deepEqual(
            [...windows].filter((w) => hex.includes(w)),
            [],
        );
    });

    it("serves ranges, touching only the segments they need", async () => {
        const body = randomBytes(300_000);
        await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "big.bin", Body: body }));
        for (const [range, start, end] of [
            ["bytes=0-0", 0, 0],
            ["bytes=65535-65537", 65_535, 65_537],
            ["bytes=299990-", 299_990, 299_999],
            ["bytes=-5", 299_995, 299_999],
        ] as const) {
            const got = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "big.bin", Range: range }));
            assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body.subarray(start, end + 1), range);
            assert.equal(got.ContentRange, `bytes ${start}-${end}/300000`);
        }
        await assert.rejects(
            s3.send(new GetObjectCommand({ Bucket: "photos", Key: "big.bin", Range: "bytes=300000-" })),
            {
                name: "InvalidRange",
            },
        );
    });

    /** Bytes the backend sent to this process that nobody has read: what a backend GET the service left holds. */
    const unreadFromBackend = () =>
        execFileSync("ss", ["-tnH", "state", "established", `( dport = :${new URL(backend.url).port} )`], {
            encoding: "utf8",
        })
            .split("\n")
            .filter(Boolean)
            .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);

    for (const upload of ["one PUT", "a multipart upload"]) {
        it(`ends its backend GET when the client goes away in the middle of a body (${upload})`, async () => {
            const Key = `left ${upload}.bin`;
            const content = randomBytes(16 << 20);
            if (upload === "one PUT") {
                await s3.send(new PutObjectCommand({ Bucket: "photos", Key, Body: content }));
            } else {
                const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "photos", Key }));
                const Parts = [];
                for (const PartNumber of [1, 2]) {
                    const Body = content.subarray((PartNumber - 1) << 23, PartNumber << 23);
                    const { ETag } = await s3.send(
                        new UploadPartCommand({ Bucket: "photos", Key, UploadId, PartNumber, Body }),
                    );
                    Parts.push({ PartNumber, ETag });
                }
                await s3.send(
                    new CompleteMultipartUploadCommand({
                        Bucket: "photos",
                        Key,
                        UploadId,
                        MultipartUpload: { Parts },
                    }),
                );
            }
            const body = (await s3.send(new GetObjectCommand({ Bucket: "photos", Key }))).Body as Readable;
            await new Promise((resolve) => body.once("data", resolve));
            body.destroy();
            const deadline = Date.now() + 5000;
            while (unreadFromBackend() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
            assert.equal(unreadFromBackend(), 0, "bytes from the backend are left unread on a backend connection");
        });
    }

    it("keeps an idle connection open past node:http's 5 s: a pooled client's next request reuses it", async function () {
        if (kind !== s3Backends()[0]) this.skip(); // the HTTP server's, whatever the backend
        // A GET that succeeds: an error's answer closes its connection on purpose.
        await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "kept-alive.txt", Body: "hello" }));
        const credentials = { accessKeyId: service.accessKey.id, secretAccessKey: service.accessKey.secret };
        const url = await presignedGetUrl(service.url, credentials, "photos", "kept-alive.txt", { expiresIn: 60 });
        assert.ok(await reusesIdleConnection(url, 6_000), "the server closed the idle connection");
    });

    it("gives every answer its own request id, as S3 does: 16 hex digits", async () => {
        await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "id.txt", Body: "x" }));
        const ids = await Promise.all(
            Array.from({ length: 200 }, async () => {
                const got = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "id.txt" }));
                await got.Body!.transformToString();
                return got.$metadata.requestId ?? "";
            }),
        );
        assert.ok(
            ids.every((id) => /^[0-9A-F]{16}$/.test(id)),
            ids.find((id) => !/^[0-9A-F]{16}$/.test(id)),
        );
        assert.equal(new Set(ids).size, ids.length);
    });

    it("calls Vault once per PUT and not at all for a cached GET", async () => {
        await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "count.txt", Body: "x" }));
        const before = transit.calls;
        await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "count.txt", Body: "y" }));
        assert.equal(transit.calls - before, 1);
        for (let i = 0; i < 3; i++) await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "count.txt" }));
        assert.equal(transit.calls - before, 1);
    });

    it("answers a PUT without waiting for Vault: its data key was made ahead, by the PUT before it", async () => {
        // A transit client whose new-key calls hang while the gate is shut.
        let openGate = () => {};
        let gate = Promise.resolve();
        const gated = new (class extends TransitClient {
            override async newDataKey(context: Buffer) {
                await gate;
                return super.newDataKey(context);
            }
        })({ address: bao.url, token: () => bao.rootToken ?? "", keyName: "storage-s3-api" });
        const own = await chain.startService({ transit: gated });
        await own.s3.send(new PutObjectCommand({ Bucket: "photos", Key: "ahead/1", Body: "first" }));
        const callsBefore = gated.calls;
        gate = new Promise((resolve) => (openGate = resolve));
        let timer: NodeJS.Timeout | undefined;
        try {
            const second = own.s3.send(new PutObjectCommand({ Bucket: "photos", Key: "ahead/2", Body: "second" }));
            const answered = await Promise.race([
                second.then(() => true),
                new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 10_000))),
            ]);
            assert.ok(answered, "the PUT waited for a Vault call");
            assert.equal(gated.calls, callsBefore, "the next key's call is still held at the gate");
        } finally {
            clearTimeout(timer);
            openGate();
        }
        const stored = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "ahead/2" }));
        assert.equal(await stored.Body!.transformToString(), "second");
    });

    it("lists keys with their plaintext sizes, prefixes and delimiters", async () => {
        for (const k of ["list/a/1", "list/a/2", "list/b/1", "list/c"]) {
            await s3.send(new PutObjectCommand({ Bucket: "photos", Key: k, Body: "12345" }));
        }
        const all = await s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: "list/" }));
        assert.deepEqual(
            all.Contents?.map((o) => [o.Key, o.Size]),
            [
                ["list/a/1", 5],
                ["list/a/2", 5],
                ["list/b/1", 5],
                ["list/c", 5],
            ],
        );
        const tree = await s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: "list/", Delimiter: "/" }));
        assert.deepEqual(
            tree.CommonPrefixes?.map((p) => p.Prefix),
            ["list/a/", "list/b/"],
        );
        assert.deepEqual(
            tree.Contents?.map((o) => o.Key),
            ["list/c"],
        );
        const page = await s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: "list/", MaxKeys: 2 }));
        assert.equal(page.IsTruncated, true);
        const next = await s3.send(
            new ListObjectsV2Command({
                Bucket: "photos",
                Prefix: "list/",
                ContinuationToken: page.NextContinuationToken,
            }),
        );
        assert.deepEqual(
            next.Contents?.map((o) => o.Key),
            ["list/b/1", "list/c"],
        );
    });

    it("lists names url-encoded when asked, as rclone and minio-go ask, and refuses other encodings", async () => {
        for (const k of ["enc/a b+c%d.txt", "enc/ü/x", "enc/plain"]) {
            await s3.send(new PutObjectCommand({ Bucket: "photos", Key: k, Body: "1" }));
        }
        const listed = await s3.send(
            new ListObjectsV2Command({ Bucket: "photos", Prefix: "enc/", Delimiter: "/", EncodingType: "url" }),
        );
        assert.equal(listed.EncodingType, "url");
        assert.deepEqual(
            listed.Contents?.map((o) => o.Key),
            ["enc/a+b%2Bc%25d.txt", "enc/plain"],
        );
        assert.deepEqual(
            listed.CommonPrefixes?.map((p) => p.Prefix),
            ["enc/%C3%BC/"],
        );
        // What a client does with them: form-decoding gives the names back.
        const decoded = listed.Contents?.map((o) => decodeURIComponent((o.Key ?? "").replaceAll("+", " ")));
        assert.deepEqual(decoded, ["enc/a b+c%d.txt", "enc/plain"]);
        const plain = await s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: "enc/", Delimiter: "/" }));
        assert.deepEqual([plain.EncodingType, plain.Contents?.[0]?.Key], [undefined, "enc/a b+c%d.txt"]);
        await assert.rejects(
            s3.send(new ListObjectsV2Command({ Bucket: "photos", EncodingType: "base64" as "url" })),
            status(400, "InvalidArgument"),
        );
    });

    it("names its region to clients that ask where a bucket is, as minio-go (restic, mc) does first", async () => {
        const here = await s3.send(new GetBucketLocationCommand({ Bucket: "photos" }));
        assert.ok(!here.LocationConstraint, "us-east-1 is named by an empty constraint");
        await assert.rejects(s3.send(new GetBucketLocationCommand({ Bucket: "nowhere" })), status(404, "NoSuchBucket"));
        const home = await chain.startService({ region: "garcia-home" });
        const { id, secret } = home.accessKey;
        const located = await s3Client(home.url, id, secret, { region: "garcia-home" }).send(
            new GetBucketLocationCommand({ Bucket: "photos" }),
        );
        assert.equal(located.LocationConstraint, "garcia-home");
        // Signed for another region, the answer names the right one, as S3's does.
        const wrong = await fetch(`${home.url}/photos?location`, {
            headers: {
                authorization: `AWS4-HMAC-SHA256 Credential=${id}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00`,
                "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
                "x-amz-date": "20260101T000000Z",
            },
        });
        assert.equal(wrong.status, 400);
        assert.match(await wrong.text(), /<Code>AuthorizationHeaderMalformed<\/Code>.*<Region>garcia-home<\/Region>/);
        await home.stop();
    });

    it("answers 501 to what it does not implement on a bucket, rather than a listing", async () => {
        const notImplemented = status(501, "NotImplemented");
        await assert.rejects(s3.send(new GetBucketVersioningCommand({ Bucket: "photos" })), notImplemented);
        await assert.rejects(s3.send(new GetBucketAclCommand({ Bucket: "photos" })), notImplemented);
    });

    it("takes the aws-chunked uploads an SDK with default checksums sends", async () => {
        // The SDK's own defaults: CRC32 checksums, sent as aws-chunked trailers for streams.
        const defaults = s3Client(service.url, service.accessKey.id, service.accessKey.secret, {
            requestChecksumCalculation: "WHEN_SUPPORTED",
            responseChecksumValidation: "WHEN_SUPPORTED",
        });
        const body = randomBytes(150_000);
        for (const [key, payload] of [
            ["chunked/buffer.bin", body],
            ["chunked/stream.bin", Readable.from([body.subarray(0, 70_000), body.subarray(70_000)])],
        ] as const) {
            await defaults.send(
                new PutObjectCommand({ Bucket: "photos", Key: key, Body: payload, ContentLength: body.length }),
            );
            const got = await defaults.send(new GetObjectCommand({ Bucket: "photos", Key: key }));
            assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body, key);
        }
    });

    it("writes with If-None-Match: * exactly once among concurrent writers", async () => {
        const attempts = await Promise.allSettled(
            Array.from({ length: 8 }, (_, i) =>
                s3.send(
                    new PutObjectCommand({
                        Bucket: "photos",
                        Key: "race/claim",
                        Body: `writer ${i}`,
                        IfNoneMatch: "*",
                    }),
                ),
            ),
        );
        const won = attempts.filter((a) => a.status === "fulfilled");
        assert.equal(won.length, 1);
        for (const a of attempts.filter((r) => r.status === "rejected")) {
            assert.ok(
                [409, 412].includes((a.reason as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode),
            );
        }
    });

    it("updates with If-Match: exactly one of concurrent writers of one version wins, a stale version is refused", async () => {
        const v1 = await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "cas/doc", Body: "v1" }));
        const v2 = await s3.send(
            new PutObjectCommand({ Bucket: "photos", Key: "cas/doc", Body: "v2", IfMatch: v1.ETag }),
        );
        await assert.rejects(
            s3.send(new PutObjectCommand({ Bucket: "photos", Key: "cas/doc", Body: "stale", IfMatch: v1.ETag })),
            status(412, "PreconditionFailed"),
        );
        const attempts = await Promise.allSettled(
            Array.from({ length: 8 }, (_, i) =>
                s3.send(
                    new PutObjectCommand({ Bucket: "photos", Key: "cas/doc", Body: `v3 by ${i}`, IfMatch: v2.ETag }),
                ),
            ),
        );
        assert.equal(attempts.filter((a) => a.status === "fulfilled").length, 1);
        await assert.rejects(
            s3.send(new PutObjectCommand({ Bucket: "photos", Key: "cas/missing", Body: "x", IfMatch: v2.ETag })),
            (err: unknown) =>
                [404, 412].includes((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode),
        );
        await assert.rejects(
            s3.send(new PutObjectCommand({ Bucket: "photos", Key: "cas/doc", Body: "x", IfMatch: '"forged"' })),
            status(412, "PreconditionFailed"),
        );
    });

    it("answers conditional GETs: 304 for a matching If-None-Match, 412 for a failing If-Match", async () => {
        const put = await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "cond.txt", Body: "v1" }));
        await assert.rejects(
            s3.send(new GetObjectCommand({ Bucket: "photos", Key: "cond.txt", IfNoneMatch: put.ETag })),
            (err: unknown) => {
                assert.equal((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode, 304);
                return true;
            },
        );
        await assert.rejects(
            s3.send(new GetObjectCommand({ Bucket: "photos", Key: "cond.txt", IfMatch: '"0000"' })),
            status(412, "PreconditionFailed"),
        );
        const got = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "cond.txt", IfMatch: put.ETag }));
        assert.equal(await got.Body!.transformToString(), "v1");
    });

    it("copies without re-encrypting, bound to the new name, keeping or replacing metadata", async () => {
        const body = randomBytes(70_000);
        await s3.send(
            new PutObjectCommand({
                Bucket: "photos",
                Key: "copy/src.bin",
                Body: body,
                ContentType: "image/png",
                Metadata: { a: "1" },
            }),
        );
        const calls = transit.calls;
        await s3.send(
            new CopyObjectCommand({ Bucket: "photos", Key: "copy/same.bin", CopySource: "photos/copy/src.bin" }),
        );
        await s3.send(
            new CopyObjectCommand({
                Bucket: "photos",
                Key: "copy/new.bin",
                CopySource: "photos/copy/src.bin",
                MetadataDirective: "REPLACE",
                ContentType: "text/plain",
                Metadata: { b: "2" },
            }),
        );
        assert.equal(transit.calls, calls, "a copy called Vault (it should reuse the cached key)");
        const same = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "copy/same.bin" }));
        assert.deepEqual(Buffer.from(await same.Body!.transformToByteArray()), body);
        assert.deepEqual([same.ContentType, same.Metadata], ["image/png", { a: "1" }]);
        const replaced = await s3.send(new HeadObjectCommand({ Bucket: "photos", Key: "copy/new.bin" }));
        assert.deepEqual(
            [replaced.ContentType, replaced.Metadata, replaced.ContentLength],
            ["text/plain", { b: "2" }, 70_000],
        );
        const src = await direct.send(new HeadObjectCommand({ Bucket: "photos", Key: "copy/src.bin" }));
        const dst = await direct.send(new HeadObjectCommand({ Bucket: "photos", Key: "copy/same.bin" }));
        assert.equal(dst.Metadata?.["pce-k"], src.Metadata?.["pce-k"], "the copy was re-encrypted");
        assert.notEqual(dst.Metadata?.["pce-b"], src.Metadata?.["pce-b"]);
    });

    it("deletes many objects at once", async () => {
        const keys = ["bulk/a", "bulk/b & c", "bulk/<d>"];
        for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: "photos", Key, Body: "x" }));
        const out = await s3.send(
            new DeleteObjectsCommand({ Bucket: "photos", Delete: { Objects: keys.map((Key) => ({ Key })) } }),
        );
        assert.deepEqual(out.Deleted?.map((d) => d.Key).sort(), [...keys].sort());
        const left = await s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: "bulk/" }));
        assert.equal(left.KeyCount, 0);
    });

    it("follows a transit key rotation: rewraps every key, content untouched, old key version retired", async () => {
        await s3.send(new CreateBucketCommand({ Bucket: "rotation" }));
        const bodies = Array.from({ length: 5 }, () => randomBytes(1000));
        const etags: string[] = [];
        for (const [i, Body] of bodies.entries()) {
            etags.push((await s3.send(new PutObjectCommand({ Bucket: "rotation", Key: `o${i}`, Body }))).ETag ?? "");
        }
        await baoApi(bao, "POST", "transit/keys/storage-s3-api/rotate", {});

        const objects = new EncryptedObjects(direct, transit, randomBytes(32));
        assert.deepEqual(await objects.rewrapBucket("rotation"), { objects: 5, rewrapped: 5 });
        const current = (await baoApi(bao, "GET", "transit/keys/storage-s3-api")) as {
            data: { latest_version: number };
        };
        await baoApi(bao, "POST", "transit/keys/storage-s3-api/config", {
            min_decryption_version: current.data.latest_version,
        });

        // A fresh service (empty key cache) reads everything; no object keeps an old key version.
        const fresh = await chain.startService({
            transit: new TransitClient({
                address: bao.url,
                token: () => bao.rootToken ?? "",
                keyName: "storage-s3-api",
            }),
        });
        try {
            const reader = fresh.s3;
            for (const [i, body] of bodies.entries()) {
                const got = await reader.send(new GetObjectCommand({ Bucket: "rotation", Key: `o${i}` }));
                assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
                const atBackend = await direct.send(new HeadObjectCommand({ Bucket: "rotation", Key: `o${i}` }));
                assert.match(
                    atBackend.Metadata?.["pce-k"] ?? "",
                    new RegExp(`^vault:v${current.data.latest_version}:`),
                );
            }
        } finally {
            await fresh.stop();
        }
        const again = await s3.send(new HeadObjectCommand({ Bucket: "rotation", Key: "o0" }));
        assert.equal(again.ETag, etags[0], "the client ETag changed with the rewrap");
    });

    it("leaks no data key into the backend's or OpenBao's output", async () => {
        const key = await transit.newDataKey(randomBytes(16));
        await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "logs.txt", Body: "x" }));
        const logs = backend.log() + bao.log();
        assert.ok(logs.length > 0, "no server output was captured");
        for (const form of [
            key.plaintext.toString("base64"),
            key.plaintext.toString("hex"),
            key.plaintext.toString("base64url"),
        ]) {
            assert.ok(!logs.includes(form), "a data key appears in a server's output");
        }
    });

    describe("at scale", () => {
        const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

        it("round-trips 100 MiB in one PUT and in a multipart upload of 8 MiB parts", async () => {
            const body = randomBytes(100 * 1024 * 1024);
            await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "large/single.bin", Body: body }));
            const single = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "large/single.bin" }));
            assert.equal(digest(await single.Body!.transformToByteArray()), digest(body));

            const Key = "large/multipart.bin";
            const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "photos", Key }));
            const partSize = 8 * 1024 * 1024;
            const parts = [];
            for (let offset = 0, n = 1; offset < body.length; offset += partSize, n++) {
                const Body = body.subarray(offset, offset + partSize);
                const out = await s3.send(
                    new UploadPartCommand({ Bucket: "photos", Key, UploadId, PartNumber: n, Body }),
                );
                parts.push({ PartNumber: n, ETag: out.ETag });
            }
            assert.equal(parts.length, 13);
            await s3.send(
                new CompleteMultipartUploadCommand({
                    Bucket: "photos",
                    Key,
                    UploadId,
                    MultipartUpload: { Parts: parts },
                }),
            );
            const whole = await s3.send(new GetObjectCommand({ Bucket: "photos", Key }));
            assert.equal(whole.ContentLength, body.length);
            assert.equal(digest(await whole.Body!.transformToByteArray()), digest(body));
            const tail = await s3.send(new GetObjectCommand({ Bucket: "photos", Key, Range: "bytes=-3000000" }));
            assert.equal(
                digest(await tail.Body!.transformToByteArray()),
                digest(body.subarray(body.length - 3_000_000)),
            );
        });

        it("serves 32 concurrent clients, each reading back exactly what it wrote", async () => {
            const bodies = Array.from({ length: 32 }, (_, i) => randomBytes(50_000 + i * 10_007));
            const clients = bodies.map(() => client(service.url, service.accessKey.id, service.accessKey.secret));
            await Promise.all(
                bodies.map(async (body, i) => {
                    const Key = `concurrent/${i}`;
                    await clients[i].send(new PutObjectCommand({ Bucket: "photos", Key, Body: body }));
                    const got = await clients[i].send(new GetObjectCommand({ Bucket: "photos", Key }));
                    assert.equal(digest(await got.Body!.transformToByteArray()), digest(body), Key);
                }),
            );
            const listed = await s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: "concurrent/" }));
            assert.deepEqual(
                listed.Contents?.map((o) => o.Size).sort((a, b) => a! - b!),
                bodies.map((b) => b.length),
            );
        });
    });

    describe("multipart uploads", () => {
        const partOne = randomBytes(5 * 1024 * 1024 + 7);
        const partTwo = randomBytes(100_003);

        it("upload, retry a part, complete; read whole and across the part boundary", async () => {
            const { UploadId } = await s3.send(
                new CreateMultipartUploadCommand({ Bucket: "photos", Key: "video.mp4", ContentType: "video/mp4" }),
            );
            const upload = (PartNumber: number, Body: Buffer) =>
                s3.send(new UploadPartCommand({ Bucket: "photos", Key: "video.mp4", UploadId, PartNumber, Body }));
            const first = await upload(1, randomBytes(5 * 1024 * 1024 + 7)); // replaced by the retry below
            const one = await upload(1, partOne);
            const two = await upload(2, partTwo);
            const listed = await s3.send(new ListPartsCommand({ Bucket: "photos", Key: "video.mp4", UploadId }));
            // SeaweedFS lists every upload of a part number, the replaced ones too (S3 lists the last); completion
            // takes the parts the client names, so the object comes out right all the same.
            const replaced = (listed.Parts ?? []).filter((p) => p.ETag === first.ETag);
            assert.equal(replaced.length, kind === "seaweedfs" ? 1 : 0, "a replaced part is listed (or no longer)");
            assert.deepEqual(
                listed.Parts?.filter((p) => p.ETag !== first.ETag).map((p) => [p.PartNumber, p.ETag, p.Size]),
                [
                    [1, one.ETag, partOne.length],
                    [2, two.ETag, partTwo.length],
                ],
            );
            await s3.send(
                new CompleteMultipartUploadCommand({
                    Bucket: "photos",
                    Key: "video.mp4",
                    UploadId,
                    MultipartUpload: {
                        Parts: [
                            { PartNumber: 1, ETag: one.ETag },
                            { PartNumber: 2, ETag: two.ETag },
                        ],
                    },
                }),
            );
            const whole = Buffer.concat([partOne, partTwo]);
            const got = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "video.mp4" }));
            assert.equal(got.ContentType, "video/mp4");
            assert.equal(got.ContentLength, whole.length);
            assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(whole));
            const last = whole.length - 1;
            for (const [from, to] of [
                [0, 0],
                [70_000, 200_000],
                [partOne.length - 10, partOne.length + 9],
                [partOne.length, partOne.length + 65_536],
                [last - 5, last],
                [0, last],
            ]) {
                const ranged = await s3.send(
                    new GetObjectCommand({ Bucket: "photos", Key: "video.mp4", Range: `bytes=${from}-${to}` }),
                );
                assert.ok(
                    Buffer.from(await ranged.Body!.transformToByteArray()).equals(whole.subarray(from, to + 1)),
                    `bytes ${from}-${to}`,
                );
                assert.equal(ranged.ContentRange, `bytes ${from}-${to}/${whole.length}`);
            }
            const entry = await s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: "video.mp4" }));
            assert.equal(entry.Contents?.[0]?.Size, whole.length, "a multipart object is listed with a wrong size");
            const sidecars = await s3.send(new ListObjectsV2Command({ Bucket: "photos", Prefix: ".pce/" }));
            assert.equal(sidecars.KeyCount ?? 0, 0, "the service's own sidecars are listed to clients");
            const records = await direct.send(
                new ListObjectsV2Command({ Bucket: "photos", Prefix: `.pce/mpu/${UploadId}` }),
            );
            assert.equal(records.KeyCount ?? 0, 0, "a completed upload left its records behind");
        });

        it("copies a multipart object within its bucket and into another one", async () => {
            const whole = Buffer.concat([partOne, partTwo]);
            await s3.send(new CreateBucketCommand({ Bucket: "albums" }));
            for (const Bucket of ["photos", "albums"]) {
                await s3.send(new CopyObjectCommand({ Bucket, Key: "copied.mp4", CopySource: "photos/video.mp4" }));
                const got = await s3.send(new GetObjectCommand({ Bucket, Key: "copied.mp4" }));
                assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(whole), Bucket);
                const ranged = await s3.send(
                    new GetObjectCommand({
                        Bucket,
                        Key: "copied.mp4",
                        Range: `bytes=${partOne.length - 1}-${partOne.length}`,
                    }),
                );
                assert.ok(
                    Buffer.from(await ranged.Body!.transformToByteArray()).equals(
                        whole.subarray(partOne.length - 1, partOne.length + 1),
                    ),
                );
            }
        });

        it("answers 500, not 404, for a multipart object whose part table the backend lost", async () => {
            const stored = await direct.send(new HeadObjectCommand({ Bucket: "albums", Key: "copied.mp4" }));
            await direct.send(
                new DeleteObjectCommand({ Bucket: "albums", Key: `.pce/mpt/${stored.Metadata?.["pce-id"]}` }),
            );
            await assert.rejects(
                s3.send(new GetObjectCommand({ Bucket: "albums", Key: "copied.mp4" })),
                status(500, "InternalError"),
            );
        });

        it("refuses a forged part ETag and parts out of order", async () => {
            const { UploadId } = await s3.send(
                new CreateMultipartUploadCommand({ Bucket: "photos", Key: "forged.bin" }),
            );
            const part = await s3.send(
                new UploadPartCommand({ Bucket: "photos", Key: "forged.bin", UploadId, PartNumber: 1, Body: partTwo }),
            );
            // A part's ETag is the MD5 of its plaintext, as S3 gives; its token is in the part's record.
            assert.equal(part.ETag, `"${createHash("md5").update(partTwo).digest("hex")}"`);
            const records = await direct.send(
                new ListObjectsV2Command({ Bucket: "photos", Prefix: `.pce/mpu/${UploadId}.parts/1/` }),
            );
            const record = await direct.send(
                new GetObjectCommand({ Bucket: "photos", Key: records.Contents?.[0]?.Key ?? "" }),
            );
            const token = (await record.Body!.transformToString()).split("\n")[0];
            const raw = Buffer.from(token.replace(/"/g, ""), "base64url");
            raw[raw.length - 20] ^= 1; // the plaintext length, under the MAC
            const otherMd5 = `"${createHash("md5").update("other").digest("hex")}"`;
            const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
                s3.send(
                    new CompleteMultipartUploadCommand({
                        Bucket: "photos",
                        Key: "forged.bin",
                        UploadId,
                        MultipartUpload: { Parts },
                    }),
                );
            await assert.rejects(
                complete([{ PartNumber: 1, ETag: `"${raw.toString("base64url")}"` }]),
                status(400, "InvalidPart"),
            );
            await assert.rejects(complete([{ PartNumber: 1, ETag: otherMd5 }]), status(400, "InvalidPart"));
            await assert.rejects(complete([{ PartNumber: 2, ETag: part.ETag }]), status(400, "InvalidPart"));
            await s3.send(new AbortMultipartUploadCommand({ Bucket: "photos", Key: "forged.bin", UploadId }));
            await assert.rejects(
                direct.send(new HeadObjectCommand({ Bucket: "photos", Key: `.pce/mpu/${UploadId}` })),
                {
                    name: "NotFound",
                },
            );
        });

        it("refuses a multipart object whose parts the backend reordered", async () => {
            const { UploadId } = await s3.send(
                new CreateMultipartUploadCommand({ Bucket: "photos", Key: "order.bin" }),
            );
            const upload = (PartNumber: number, Body: Buffer) =>
                s3.send(new UploadPartCommand({ Bucket: "photos", Key: "order.bin", UploadId, PartNumber, Body }));
            const one = await upload(1, partOne);
            const two = await upload(2, partTwo);
            await s3.send(
                new CompleteMultipartUploadCommand({
                    Bucket: "photos",
                    Key: "order.bin",
                    UploadId,
                    MultipartUpload: {
                        Parts: [
                            { PartNumber: 1, ETag: one.ETag },
                            { PartNumber: 2, ETag: two.ETag },
                        ],
                    },
                }),
            );
            await rewriteAtBackend("order.bin", (bytes) => {
                const cut = bytes.length - (32 + partTwo.length + 16 * 2);
                return Buffer.concat([bytes.subarray(cut), bytes.subarray(0, cut)]);
            });
            await assert.rejects(readThroughService("order.bin"));
        });
    });

    it("deletes", async () => {
        await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "gone.txt", Body: "bye" }));
        await s3.send(new DeleteObjectCommand({ Bucket: "photos", Key: "gone.txt" }));
        await assert.rejects(s3.send(new GetObjectCommand({ Bucket: "photos", Key: "gone.txt" })), {
            name: "NoSuchKey",
        });
    });

    describe("refuses", () => {
        it("a presigned URL once it expired, a tampered one, and accepts it while valid", async () => {
            await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "shared/card.txt", Body: "happy birthday" }));
            const credentials = { accessKeyId: service.accessKey.id, secretAccessKey: service.accessKey.secret };
            const valid = await presignedGetUrl(service.url, credentials, "photos", "shared/card.txt", {
                expiresIn: 60,
            });
            const ok = await fetch(valid);
            assert.equal(ok.status, 200);
            assert.equal(await ok.text(), "happy birthday");

            const tampered = await fetch(valid.replace("shared/card.txt", "shared/other.txt"));
            assert.equal(tampered.status, 403);
            assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);

            const expired = await presignedGetUrl(service.url, credentials, "photos", "shared/card.txt", {
                expiresIn: 60,
                signingDate: new Date(Date.now() - 120_000),
            });
            const refused = await fetch(expired);
            assert.equal(refused.status, 403);
            assert.match(await refused.text(), /<Code>AccessDenied<\/Code><Message>Request has expired/);
        });

        it("a wrong secret and an unknown key, with S3's codes", async () => {
            const wrong = client(service.url, service.accessKey.id, "wrong");
            await assert.rejects(
                wrong.send(new GetObjectCommand({ Bucket: "photos", Key: "count.txt" })),
                status(403, "SignatureDoesNotMatch"),
            );
            const stranger = client(service.url, "stranger", "x");
            await assert.rejects(
                stranger.send(new PutObjectCommand({ Bucket: "photos", Key: "x", Body: "x" })),
                status(403, "InvalidAccessKeyId"),
            );
            await assert.rejects(direct.send(new HeadObjectCommand({ Bucket: "photos", Key: "x" })), {
                name: "NotFound",
            });
        });

        it("an object the backend tampered with", async () => {
            const body = randomBytes(100_000);
            await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "tamper.bin", Body: body }));
            await rewriteAtBackend("tamper.bin", (bytes) => {
                bytes[70_000] ^= 0x01; // inside the second segment
                return bytes;
            });
            await assert.rejects(readThroughService("tamper.bin"));
        });

        it("a tampered segment late in a large object: the client gets the plaintext before it and no byte of it", async () => {
            const body = randomBytes(1024 * 1024);
            await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "tamper-late.bin", Body: body }));
            const bad = 12;
            await rewriteAtBackend("tamper-late.bin", (bytes) => {
                bytes[bad * (65_536 + 16) + 5] ^= 0x01;
                return bytes;
            });
            const got = await s3.send(new GetObjectCommand({ Bucket: "photos", Key: "tamper-late.bin" }));
            const received: Buffer[] = [];
            await assert.rejects(async () => {
                for await (const chunk of got.Body as Readable) received.push(chunk as Buffer);
            });
            const prefix = Buffer.concat(received);
            assert.ok(prefix.length <= bad * 65_536, `${prefix.length} bytes reached the client`);
            assert.ok(
                prefix.equals(body.subarray(0, prefix.length)),
                "bytes that are not the plaintext reached the client",
            );
        });

        it("an object the backend moved to another name", async () => {
            await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "private/diary.txt", Body: "dear diary" }));
            await direct.send(
                new CopyObjectCommand({
                    Bucket: "photos",
                    Key: "public/diary.txt",
                    CopySource: "photos/private/diary.txt",
                }),
            );
            await assert.rejects(
                s3.send(new GetObjectCommand({ Bucket: "photos", Key: "public/diary.txt" })),
                status(500, "InternalError"),
            );
        });
    });
});
