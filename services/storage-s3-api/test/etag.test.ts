// ETags clients can check: a single PUT's ETag is the MD5 of its plaintext, as S3 gives for unencrypted and
// SSE-S3 objects, whichever way the body came (small, streamed, with Content-MD5), in every answer (PUT, GET,
// HEAD, listing, copy); the backend sees it only sealed. Conditions on it stay exact, objects written before
// (no sealed MD5) still read with their old ETag.
import * as assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
    CompleteMultipartUploadCommand,
    CopyObjectCommand,
    CreateMultipartUploadCommand,
    ListPartsCommand,
    UploadPartCommand,
    CreateBucketCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
    type S3Client,
} from "@aws-sdk/client-s3";
import { describeEachS3Backend } from "@peoples-cloud/testkit";
import { TransitClient } from "../src/vault";
import { type Chain, type RunningService, startChain, status } from "./chain";

const md5 = (b: Buffer | string) => createHash("md5").update(b).digest();
const etagOf = (b: Buffer | string) => `"${md5(b).toString("hex")}"`;

describeEachS3Backend("ETags", function (kind) {
    this.timeout(120_000);
    let chain: Chain;
    let service: RunningService;
    let s3: S3Client;
    let direct: S3Client;
    const Bucket = "etags";
    /** The deployment's ETag key, which every instance shares. */
    const etagKey = randomBytes(32);

    before(async () => {
        chain = await startChain(kind);
        ({ direct } = chain);
        service = await chain.startService({ etagKey });
        ({ s3 } = service);
        await s3.send(new CreateBucketCommand({ Bucket }));
    });
    after(async () => {
        await chain?.stop();
    });

    /** Every way the service answers with an object's ETag. */
    async function etagsOf(Key: string): Promise<string[]> {
        const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
        await got.Body!.transformToByteArray();
        const head = await s3.send(new HeadObjectCommand({ Bucket, Key }));
        const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: Key }));
        const entry = listed.Contents?.find((o) => o.Key === Key);
        return [got.ETag ?? "", head.ETag ?? "", entry?.ETag ?? ""];
    }

    /** Nothing the backend holds or answers about the object carries its MD5. */
    async function assertSealed(Key: string, body: Buffer) {
        const head = await direct.send(new HeadObjectCommand({ Bucket, Key }));
        const seen = JSON.stringify(head);
        for (const form of [md5(body).toString("hex"), md5(body).toString("base64"), md5(body).toString("base64url")]) {
            assert.ok(!seen.includes(form), `the backend learned the MD5 (${form})`);
        }
        assert.ok(head.Metadata?.["pce-e"], "the sealed MD5 is in the backend's metadata");
    }

    const cases: [string, number, boolean][] = [
        ["small", 4096, false],
        ["empty", 0, false],
        ["at the buffered limit", 1024 * 1024, false],
        ["streamed, no Content-MD5", 3 * 1024 * 1024 + 5, false],
        ["streamed, with Content-MD5", 3 * 1024 * 1024 + 5, true],
        ["small, with Content-MD5", 1000, true],
    ];
    for (const [name, size, withMd5] of cases) {
        it(`a single PUT (${name}, ${size} bytes): the MD5 of the plaintext in PUT, GET, HEAD and listing`, async () => {
            const body = randomBytes(size);
            const Key = `single/${name.replace(/\W+/g, "-")}`;
            const put = await s3.send(
                new PutObjectCommand({
                    Bucket,
                    Key,
                    Body: body,
                    ContentMD5: withMd5 ? md5(body).toString("base64") : undefined,
                }),
            );
            assert.equal(put.ETag, etagOf(body));
            assert.deepEqual(await etagsOf(Key), [put.ETag, put.ETag, put.ETag]);
            await assertSealed(Key, body);
        });
    }

    it("keeps the opaque ETag of a streamed single PUT above 16 MiB without Content-MD5 (no self-copy)", async () => {
        const body = randomBytes(16 * 1024 * 1024 + 1);
        const put = await s3.send(new PutObjectCommand({ Bucket, Key: "single/large", Body: body }));
        assert.match(put.ETag ?? "", /^"[A-Za-z0-9_-]{40,}"$/);
        assert.deepEqual(await etagsOf("single/large"), [put.ETag, put.ETag, put.ETag]);
        const withMd5 = await s3.send(
            new PutObjectCommand({ Bucket, Key: "single/large", Body: body, ContentMD5: md5(body).toString("base64") }),
        );
        assert.equal(withMd5.ETag, etagOf(body));
    });

    it("lists the MD5 of an object this instance never saw (a HEAD, no Vault call)", async () => {
        const body = randomBytes(5000);
        await s3.send(new PutObjectCommand({ Bucket, Key: "elsewhere/one", Body: body }));
        const { bao } = chain;
        const transit = new TransitClient({
            address: bao.url,
            token: () => bao.rootToken ?? "",
            keyName: "storage-s3-api",
        });
        const other = await chain.startService({ etagKey, transit });
        try {
            const listed = await other.s3.send(new ListObjectsV2Command({ Bucket, Prefix: "elsewhere/" }));
            assert.equal(listed.Contents?.[0]?.ETag, etagOf(body));
            assert.equal(transit.calls, 0);
        } finally {
            await other.stop();
        }
    });

    it("refuses a body that does not match its Content-MD5, storing nothing", async () => {
        for (const size of [100, 3 * 1024 * 1024]) {
            const Key = `bad-digest/${size}`;
            await assert.rejects(
                s3.send(
                    new PutObjectCommand({
                        Bucket,
                        Key,
                        Body: randomBytes(size),
                        ContentMD5: md5("something else").toString("base64"),
                    }),
                ),
                status(400, "BadDigest"),
            );
            await assert.rejects(s3.send(new HeadObjectCommand({ Bucket, Key })), status(404));
        }
    });

    it("keeps If-Match on PUT exact with MD5 ETags: the current version's passes, a stale one gets 412", async () => {
        const Key = "cas/doc";
        const v1 = await s3.send(new PutObjectCommand({ Bucket, Key, Body: "v1" }));
        const v2 = await s3.send(new PutObjectCommand({ Bucket, Key, Body: "v2", IfMatch: v1.ETag }));
        assert.equal(v2.ETag, etagOf("v2"));
        await assert.rejects(
            s3.send(new PutObjectCommand({ Bucket, Key, Body: "v3", IfMatch: v1.ETag })),
            status(412, "PreconditionFailed"),
        );
        await assert.rejects(
            s3.send(new PutObjectCommand({ Bucket, Key: "cas/missing", Body: "x", IfMatch: v2.ETag })),
            status(412, "PreconditionFailed"),
        );
        const got = await s3.send(new GetObjectCommand({ Bucket, Key, IfMatch: v2.ETag }));
        assert.equal(await got.Body!.transformToString(), "v2");
        await assert.rejects(s3.send(new GetObjectCommand({ Bucket, Key, IfNoneMatch: v2.ETag })), status(304));
    });

    it("copies with the source's MD5 and its copy conditions, exact", async () => {
        const body = randomBytes(70_000);
        const put = await s3.send(new PutObjectCommand({ Bucket, Key: "copy/source", Body: body }));
        const copy = (Key: string, conditions: Partial<CopyObjectCommand["input"]>) =>
            s3.send(new CopyObjectCommand({ Bucket, Key, CopySource: `${Bucket}/copy/source`, ...conditions }));
        const copied = await copy("copy/a", { CopySourceIfMatch: put.ETag });
        assert.equal(copied.CopyObjectResult?.ETag, put.ETag);
        assert.deepEqual(await etagsOf("copy/a"), [put.ETag, put.ETag, put.ETag]);
        await assertSealed("copy/a", body);
        await assert.rejects(copy("copy/b", { CopySourceIfMatch: etagOf("other") }), status(412, "PreconditionFailed"));
        await assert.rejects(copy("copy/b", { CopySourceIfNoneMatch: put.ETag }), status(412, "PreconditionFailed"));
        await copy("copy/b", { CopySourceIfNoneMatch: etagOf("other") });
        const future = new Date(Date.now() + 3_600_000);
        const past = new Date(Date.now() - 3_600_000);
        await assert.rejects(copy("copy/c", { CopySourceIfModifiedSince: future }), status(412));
        await assert.rejects(copy("copy/c", { CopySourceIfUnmodifiedSince: past }), status(412));
        // S3's rule: a matching If-Match wins over a failing If-Unmodified-Since.
        await copy("copy/c", { CopySourceIfMatch: put.ETag, CopySourceIfUnmodifiedSince: past });
        await assert.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: "copy/d" })), status(404));
    });

    it("reads an object written before sealed MD5s (format revision 1) with its old ETag, conditions included", async () => {
        const Key = "old/object";
        await s3.send(new PutObjectCommand({ Bucket, Key, Body: "written before" }));
        // What revision 1 wrote: the same metadata without pce-e (copied onto itself at the backend).
        const head = await direct.send(new HeadObjectCommand({ Bucket, Key }));
        const older = { ...head.Metadata };
        delete older["pce-e"];
        await direct.send(
            new CopyObjectCommand({
                Bucket,
                Key,
                CopySource: `${Bucket}/${Key}`,
                MetadataDirective: "REPLACE",
                ContentType: "application/octet-stream",
                Metadata: older,
            }),
        );
        const [got, headed, listed] = await etagsOf(Key);
        assert.match(got, /^"[A-Za-z0-9_-]{40,}"$/, "the old, opaque ETag");
        assert.deepEqual([headed, listed], [got, got]);
        const read = await s3.send(new GetObjectCommand({ Bucket, Key, IfMatch: got }));
        assert.equal(await read.Body!.transformToString(), "written before");
        const updated = await s3.send(new PutObjectCommand({ Bucket, Key, Body: "rewritten", IfMatch: got }));
        assert.equal(updated.ETag, etagOf("rewritten"));
        await assert.rejects(
            s3.send(new PutObjectCommand({ Bucket, Key, Body: "stale", IfMatch: got })),
            status(412, "PreconditionFailed"),
        );
    });

    it("gives parts S3's ETag, the MD5 of each, in UploadPart and ListParts; another instance completes with them", async () => {
        const Key = "parts/object";
        const parts = [randomBytes(5 * 1024 * 1024), randomBytes(70_001)];
        const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
        const given: string[] = [];
        for (const [i, Body] of parts.entries()) {
            const part = await s3.send(
                new UploadPartCommand({
                    Bucket,
                    Key,
                    UploadId,
                    PartNumber: i + 1,
                    Body,
                    ContentMD5: i === 0 ? md5(Body).toString("base64") : undefined,
                }),
            );
            given.push(part.ETag ?? "");
        }
        assert.deepEqual(given, parts.map(etagOf));
        const listed = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }));
        assert.deepEqual(
            listed.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size]),
            parts.map((p, i) => [i + 1, etagOf(p), p.length]),
        );
        await assert.rejects(
            s3.send(
                new UploadPartCommand({
                    Bucket,
                    Key,
                    UploadId,
                    PartNumber: 3,
                    Body: randomBytes(100),
                    ContentMD5: md5("else").toString("base64"),
                }),
            ),
            status(400, "BadDigest"),
        );
        // An instance that did not receive the parts finds their tokens in their records.
        const other = await chain.startService({ etagKey });
        try {
            await other.s3.send(
                new CompleteMultipartUploadCommand({
                    Bucket,
                    Key,
                    UploadId,
                    MultipartUpload: { Parts: given.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
                }),
            );
        } finally {
            await other.stop();
        }
        const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
        assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts)));
        // The object's ETag is not an MD5 and says so as S3's does, with its part count; conditions take it.
        const [etag, ...others] = await etagsOf(Key);
        assert.match(etag, /^"[A-Za-z0-9_-]{40,}-2"$/);
        assert.deepEqual(others, [etag, etag]);
        await s3.send(new PutObjectCommand({ Bucket, Key, Body: "replaced", IfMatch: etag }));
        await assert.rejects(
            s3.send(new PutObjectCommand({ Bucket, Key, Body: "stale", IfMatch: etag })),
            status(412, "PreconditionFailed"),
        );
    });

    it("never shows a sealed MD5 the backend moved from another object", async () => {
        await s3.send(new PutObjectCommand({ Bucket, Key: "moved/a", Body: "a" }));
        await s3.send(new PutObjectCommand({ Bucket, Key: "moved/b", Body: "b" }));
        const a = await direct.send(new HeadObjectCommand({ Bucket, Key: "moved/a" }));
        const b = await direct.send(new HeadObjectCommand({ Bucket, Key: "moved/b" }));
        await direct.send(
            new CopyObjectCommand({
                Bucket,
                Key: "moved/b",
                CopySource: `${Bucket}/moved/b`,
                MetadataDirective: "REPLACE",
                ContentType: "application/octet-stream",
                Metadata: { ...b.Metadata, "pce-e": a.Metadata?.["pce-e"] ?? "" },
            }),
        );
        // Not the other object's MD5: the opaque ETag of an object without a sealed one.
        const head = await s3.send(new HeadObjectCommand({ Bucket, Key: "moved/b" }));
        assert.match(head.ETag ?? "", /^"[A-Za-z0-9_-]{40,}"$/);
        const got = await s3.send(new GetObjectCommand({ Bucket, Key: "moved/b" }));
        assert.equal(await got.Body!.transformToString(), "b");
    });
});
