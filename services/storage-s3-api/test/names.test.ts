// Name privacy: keys encrypted per path segment. Listings through it must equal the backend's own listings of the
// same plaintext keys, for every prefix, delimiter, page size and start point tried, on each backend.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
    CompleteMultipartUploadCommand,
    CopyObjectCommand,
    CreateBucketCommand,
    CreateMultipartUploadCommand,
    DeleteObjectsCommand,
    GetObjectCommand,
    ListObjectsCommand,
    ListObjectsV2Command,
    PutObjectCommand,
    type S3Client,
    UploadPartCommand,
} from "@aws-sdk/client-s3";
import fc from "fast-check";
import { describeEachS3Backend } from "@peoples-cloud/testkit";
import { NameCipher } from "../src/format/names";
import { type Chain, filesUnder, type RunningService, startChain } from "./chain";

describe("name cipher", () => {
    const names = new NameCipher(randomBytes(32));

    it("round-trips any key, hiding every segment", () => {
        fc.assert(
            fc.property(
                fc.array(
                    fc.string({ unit: "grapheme", maxLength: 12 }).filter((s) => !s.includes("/")),
                    { minLength: 1, maxLength: 5 },
                ),
                (s) => {
                    const key = s.join("/");
                    const stored = names.encrypt("photos", key);
                    assert.equal(names.decrypt("photos", stored), key);
                    assert.equal(stored.split("/").length, s.length);
                    assert.match(stored, /^[A-Za-z0-9_/-]+$/);
                },
            ),
        );
    });

    it("is deterministic per path, differs per folder and per bucket", () => {
        const [a1, b1] = names.encrypt("photos", "ana/notes").split("/");
        const [a2, b2] = names.encrypt("photos", "ana/notes").split("/");
        assert.equal(a1, a2);
        assert.equal(b1, b2);
        assert.notEqual(names.encrypt("photos", "ben/notes").split("/")[1], b1, "same name, other folder");
        assert.notEqual(names.encrypt("music", "ana/notes"), names.encrypt("photos", "ana/notes"));
        assert.equal(names.folderPrefix("photos", "ana/no"), `${a1}/`);
        assert.equal(names.folderPrefix("photos", "an"), "");
    });

    it("refuses names it did not encrypt, moved or changed", () => {
        const stored = names.encrypt("photos", "ana/notes");
        const [a, b] = stored.split("/");
        assert.equal(names.decrypt("music", stored), undefined, "moved to another bucket");
        assert.equal(names.decrypt("photos", `${names.encrypt("photos", "ben")}/${b}`), undefined, "moved folder");
        const flipped = Buffer.from(b, "base64url");
        flipped[20] ^= 1;
        assert.equal(names.decrypt("photos", `${a}/${flipped.toString("base64url")}`), undefined, "bit flip");
        assert.equal(names.decrypt("photos", ".pce/mpu/x"), undefined);
        assert.equal(new NameCipher(randomBytes(32)).decrypt("photos", stored), undefined, "other key");
    });
});

describeEachS3Backend("name privacy with OpenBao", function (kind) {
    this.timeout(120_000);
    let chain: Chain;
    let plain: RunningService;
    let hidden: RunningService;
    // No key is also a folder of others: MinIO refuses that (XMinioParentIsObject).
    const keys = [
        "a/b",
        "a/b2/c",
        "a/b2/d/e",
        "a/bc",
        "a/b c/d",
        "ab",
        "b/é/x",
        "b/é/y",
        "b/z",
        "b/ñandú.txt",
        "photos/2026/summer/beach.jpg",
        "photos/2026/summer/dunes.jpg",
        "photos/2026/winter/snow.jpg",
        "photos/2025/x.jpg",
        "photos-old",
        "z",
        "日本/東京.txt",
        ...Array.from({ length: 30 }, (_, i) => `bulk/${String(i).padStart(2, "0")}/${i % 3}`),
    ];

    before(async () => {
        chain = await startChain(kind);
        [plain, hidden] = await Promise.all([chain.startService(), chain.startService({ nameKey: randomBytes(32) })]);
        await plain.s3.send(new CreateBucketCommand({ Bucket: "plain" }));
        await hidden.s3.send(new CreateBucketCommand({ Bucket: "hidden" }));
        for (const [s3, Bucket] of [
            [plain.s3, "plain"],
            [hidden.s3, "hidden"],
        ] as const) {
            await Promise.all(
                keys.map((Key) => s3.send(new PutObjectCommand({ Bucket, Key, Body: `body of ${Key}` }))),
            );
        }
    });
    after(async () => {
        await chain?.stop();
    });

    async function listAll(
        s3: S3Client,
        Bucket: string,
        request: { Prefix?: string; Delimiter?: string; MaxKeys?: number; StartAfter?: string },
    ) {
        const entries: string[] = [];
        let token: string | undefined;
        let pages = 0;
        do {
            const page = await s3.send(new ListObjectsV2Command({ Bucket, ...request, ContinuationToken: token }));
            // A page holds keys and prefixes apart; together they are in UTF-8 order, page after page.
            const inPage = [
                ...(page.Contents ?? []).map((o) => ({ name: o.Key!, shown: `${o.Key} ${o.Size}` })),
                ...(page.CommonPrefixes ?? []).map((p) => ({ name: p.Prefix!, shown: `${p.Prefix} (prefix)` })),
            ].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
            entries.push(...inPage.map((e) => e.shown));
            token = page.NextContinuationToken;
            assert.ok(++pages < 100, `the listing of ${Bucket} does not end: ${JSON.stringify(request)}`);
        } while (token);
        return entries;
    }

    // The backend's own listing departs from S3 when StartAfter falls inside a prefix the delimiter rolls up:
    // S3 lists that prefix (next tests), MinIO leaves it out for "/", SeaweedFS for any delimiter.
    const departsFromS3 = (Delimiter: string | undefined, StartAfter: string | undefined) =>
        StartAfter !== undefined && Delimiter !== undefined && (kind === "seaweedfs" || Delimiter === "/");

    it("lists exactly what the backend lists for the same plaintext keys", async () => {
        const prefixes = [
            "",
            "a",
            "a/",
            "a/b",
            "a/b/",
            "b/é",
            "b/é/",
            "photos/",
            "photos/2026/s",
            "日本/",
            "bulk/1",
            "q",
        ];
        let compared = 0;
        for (const Prefix of prefixes) {
            for (const Delimiter of [undefined, "/", "u"]) {
                for (const MaxKeys of [1000, 3]) {
                    for (const StartAfter of [undefined, "a/b", "bulk/15/0", "photos/2026/summer/beach.jpg"]) {
                        // Every combination where the backend lists as S3 does must agree.
                        if (departsFromS3(Delimiter, StartAfter)) continue;
                        // MinIO's own paging with other delimiters than "/" never ends, so its single page of all
                        // entries is the oracle for every page size here.
                        const request = { Prefix, Delimiter, StartAfter };
                        assert.deepEqual(
                            await listAll(hidden.s3, "hidden", { ...request, MaxKeys }),
                            await listAll(plain.s3, "plain", request),
                            JSON.stringify({ ...request, MaxKeys }),
                        );
                        compared++;
                    }
                }
            }
        }
        assert.equal(compared, kind === "seaweedfs" ? 144 : 216);
    });

    /** Pages through ListObjects (version 1) as clients do: after NextMarker, or after the page's last key. */
    async function listAllV1(
        s3: S3Client,
        Bucket: string,
        request: { Prefix?: string; Delimiter?: string; MaxKeys?: number },
    ) {
        const entries: string[] = [];
        let marker: string | undefined;
        for (let pages = 1; ; pages++) {
            const page = await s3.send(new ListObjectsCommand({ Bucket, ...request, Marker: marker }));
            const inPage = [
                ...(page.Contents ?? []).map((o) => ({ name: o.Key!, shown: `${o.Key} ${o.Size}` })),
                ...(page.CommonPrefixes ?? []).map((p) => ({ name: p.Prefix!, shown: `${p.Prefix} (prefix)` })),
            ].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
            entries.push(...inPage.map((e) => e.shown));
            if (!page.IsTruncated) return entries;
            marker = page.NextMarker ?? page.Contents?.at(-1)?.Key;
            assert.ok(pages < 100, `the listing of ${Bucket} does not end: ${JSON.stringify(request)}`);
        }
    }

    it("lists with ListObjects (version 1) what version 2 lists, paging by marker, names hidden or not", async () => {
        let compared = 0;
        for (const Prefix of ["", "a/", "b/é", "photos/", "bulk/1", "q"]) {
            for (const Delimiter of [undefined, "/", "u"]) {
                const expected = await listAll(plain.s3, "plain", { Prefix, Delimiter });
                for (const MaxKeys of [1000, 3]) {
                    for (const [s3, Bucket] of [
                        [hidden.s3, "hidden"],
                        [plain.s3, "plain"],
                    ] as const) {
                        // MinIO's own paging with other delimiters than "/" never ends (as in version 2 above).
                        if (Bucket === "plain" && Delimiter === "u" && MaxKeys < 1000) continue;
                        const request = { Prefix, Delimiter, MaxKeys };
                        assert.deepEqual(await listAllV1(s3, Bucket, request), expected, JSON.stringify(request));
                        compared++;
                    }
                }
            }
        }
        assert.equal(compared, 66);
    });

    it("rolls keys after start-after up into prefixes that sort before it, as S3 documents", async () => {
        // S3: "starts listing after this key"; the keys after bulk/15/0 roll up into bulk/ (or bu with "u").
        const request = { Prefix: "", Delimiter: "/", StartAfter: "bulk/15/0" };
        assert.deepEqual(await listAll(hidden.s3, "hidden", request), [
            "bulk/ (prefix)",
            "photos-old 18",
            "photos/ (prefix)",
            "z 9",
            "日本/ (prefix)",
        ]);
        const withU = [
            "bu (prefix)",
            "photos-old 18",
            "photos/2025/x.jpg 25",
            "photos/2026/su (prefix)",
            "photos/2026/winter/snow.jpg 35",
            "z 9",
            "日本/東京.txt 25",
        ];
        assert.deepEqual(await listAll(hidden.s3, "hidden", { ...request, Delimiter: "u" }), withU);
        for (const Delimiter of ["/", "u"]) {
            const own = await listAll(plain.s3, "plain", { ...request, Delimiter });
            const s3 = Delimiter === "/" ? await listAll(hidden.s3, "hidden", request) : withU;
            // Where the backend departs (above), a fix shows here: then drop it from departsFromS3.
            assert.equal(own.length === s3.length - 1, departsFromS3(Delimiter, request.StartAfter), Delimiter);
        }
    });

    it("hides every name from the backend, in its listings and its files", async () => {
        const backendKeys = (await chain.direct.send(new ListObjectsV2Command({ Bucket: "hidden" }))).Contents ?? [];
        assert.equal(backendKeys.length, keys.length);
        // Numbers are left out: four digits turn up by chance in ciphertext.
        const segments = new Set(keys.flatMap((k) => k.split("/")).filter((s) => s.length >= 3 && !/^\d+$/.test(s)));
        assert.deepEqual(
            [...segments].filter((s) => backendKeys.some((o) => o.Key!.includes(s))),
            [],
        );
        // In the files: names of the same shapes made for this test, one set written through the hidden service
        // only, the other through the plain one. A backend may keep all buckets' names in one store (SeaweedFS's
        // filer), so the plain names, not the folder, tell that these files would show a leak.
        const named = (tag: string) =>
            ["ñandú", "東京", "summer"].map((shape) => `${shape}-${tag}-${randomBytes(6).toString("hex")}`);
        const [secret, shown] = [named("secret"), named("shown")];
        await hidden.s3.send(new PutObjectCommand({ Bucket: "hidden", Key: secret.join("/"), Body: "x" }));
        await plain.s3.send(new PutObjectCommand({ Bucket: "plain", Key: shown.join("/"), Body: "x" }));
        const stored = filesUnder(chain.backend.dir);
        const inFiles = (name: string) =>
            stored.some((f) => f.path.includes(name) || f.bytes.includes(Buffer.from(name)));
        assert.deepEqual(
            shown.filter((name) => !inFiles(name)),
            [],
            "the plain names are not in the files",
        );
        assert.deepEqual(secret.filter(inFiles), [], "a hidden name is in the files");
    });

    it("reads, copies and deletes by plaintext name", async () => {
        const got = await hidden.s3.send(new GetObjectCommand({ Bucket: "hidden", Key: "b/ñandú.txt" }));
        assert.equal(await got.Body!.transformToString(), "body of b/ñandú.txt");
        await hidden.s3.send(
            new CopyObjectCommand({
                Bucket: "hidden",
                Key: "copies/ñandú",
                CopySource: "hidden/b/%C3%B1and%C3%BA.txt",
            }),
        );
        const copy = await hidden.s3.send(new GetObjectCommand({ Bucket: "hidden", Key: "copies/ñandú" }));
        assert.equal(await copy.Body!.transformToString(), "body of b/ñandú.txt");
        const out = await hidden.s3.send(
            new DeleteObjectsCommand({
                Bucket: "hidden",
                Delete: { Objects: [{ Key: "copies/ñandú" }, { Key: "z" }] },
            }),
        );
        assert.deepEqual(out.Deleted?.map((d) => d.Key).sort(), ["copies/ñandú", "z"]);
        assert.deepEqual(await listAll(hidden.s3, "hidden", { Prefix: "copies/" }), []);
        assert.deepEqual(await listAll(hidden.s3, "hidden", { Prefix: "z" }), []);
    });

    it("takes multipart uploads under hidden names", async () => {
        const Key = "videos/2026/birthday.mp4";
        const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1000)];
        const { UploadId } = await hidden.s3.send(new CreateMultipartUploadCommand({ Bucket: "hidden", Key }));
        const etags = [];
        for (const [i, Body] of parts.entries()) {
            const out = await hidden.s3.send(
                new UploadPartCommand({ Bucket: "hidden", Key, UploadId, PartNumber: i + 1, Body }),
            );
            etags.push({ PartNumber: i + 1, ETag: out.ETag });
        }
        await hidden.s3.send(
            new CompleteMultipartUploadCommand({ Bucket: "hidden", Key, UploadId, MultipartUpload: { Parts: etags } }),
        );
        const got = await hidden.s3.send(new GetObjectCommand({ Bucket: "hidden", Key }));
        assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), Buffer.concat(parts));
        assert.deepEqual(await listAll(hidden.s3, "hidden", { Prefix: "videos/" }), [
            `${Key} ${5 * 1024 * 1024 + 1000}`,
        ]);
        const backend = (await chain.direct.send(new ListObjectsV2Command({ Bucket: "hidden" }))).Contents ?? [];
        assert.ok(!backend.some((o) => /videos|birthday/.test(o.Key!)));
    });

    it("refuses a key too long once encrypted, with S3's KeyTooLongError", async () => {
        const Key = Array.from({ length: 8 }, () => "x".repeat(90)).join("/");
        await assert.rejects(
            hidden.s3.send(new PutObjectCommand({ Bucket: "hidden", Key, Body: "x" })),
            (err: { name?: string; $metadata?: { httpStatusCode?: number } }) =>
                err.name === "KeyTooLongError" && err.$metadata?.httpStatusCode === 400,
        );
    });
});
