// Small protocol pieces on their own: XML text as clients write it, which operation a request is, and a path
// that cannot be decoded.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { S3Client } from "@aws-sdk/client-s3";
import { S3Error, xmlEscape, xmlUnescape } from "../src/errors";
import { operationFor } from "../src/operations";
import type { RequestEvent } from "../src/ops";
import { createS3Server } from "../src/server";
import type { TransitClient } from "../src/vault";
import { presignedPathUrl } from "./signer";

describe("XML text", () => {
    it("reads named references and the numeric ones Go's encoding/xml writes for quotes", () => {
        assert.equal(xmlUnescape("&#34;e&#x22; &lt;&amp;&gt; &apos;&quot; &#252;&#x1F600;"), '"e" <&> \'" ü😀');
        assert.equal(xmlUnescape("&amp;#34;"), "&#34;", "an escaped ampersand starts no reference");
    });

    it("gives back what was escaped", () => {
        for (let i = 0; i < 200; i++) {
            const text = randomBytes(40).toString("latin1") + "<&>'\"ü";
            assert.equal(xmlUnescape(xmlEscape(text)), text);
        }
    });

    it("refuses references to characters that do not exist", () => {
        for (const bad of ["&#0;", "&#xD800;", "&#1114112;", "&#x110000;"]) {
            assert.throws(
                () => xmlUnescape(bad),
                (err) => err instanceof S3Error && err.code === "MalformedXML",
                bad,
            );
        }
    });
});

describe("operations", () => {
    const bucketGet = (query: string) =>
        operationFor({ method: "GET", scope: "bucket", query: new URLSearchParams(query), copy: false }).name;

    it("tells the listings and the bucket's other GETs apart", () => {
        assert.equal(bucketGet("list-type=2&prefix=a"), "ListObjectsV2");
        assert.equal(bucketGet(""), "ListObjects");
        assert.equal(bucketGet("prefix=a&delimiter=%2F&marker=m&max-keys=2&encoding-type=url"), "ListObjects");
        assert.equal(bucketGet("location"), "GetBucketLocation");
        assert.equal(bucketGet("versioning"), "GetBucket");
        assert.equal(bucketGet("acl"), "GetBucket");
    });
});

describe("a path that is not valid percent-encoding", () => {
    const credentials = { accessKeyId: "garcia-family", secretAccessKey: randomBytes(24).toString("base64url") };
    const events: RequestEvent[] = [];
    let server: Server;
    let endpoint: string;

    before(async () => {
        // Nothing here reaches a backend or Vault: the request is refused before.
        server = createS3Server({
            region: "us-east-1",
            accessKeys: { [credentials.accessKeyId]: credentials.secretAccessKey },
            backend: new S3Client({ region: "us-east-1", endpoint: "http://127.0.0.1:9" }),
            transit: {} as TransitClient,
            etagKey: randomBytes(32),
            observe: (event) => events.push(event),
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise((resolve) => server.close(resolve)));

    it("is refused, and observed, without stopping the service", async () => {
        const anonymous = await fetch(`${endpoint}/photos/%ZZ`);
        assert.equal(anonymous.status, 403);
        await anonymous.text();

        const signed = await presignedPathUrl(endpoint, credentials, "/photos/%ZZ", { expiresIn: 60 });
        const refused = await fetch(signed);
        assert.equal(refused.status, 400);
        assert.match(await refused.text(), /<Code>InvalidURI<\/Code>/);

        const after = await fetch(`${endpoint}/`);
        assert.equal(after.status, 403, "the service still answers");
        await after.text();
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(
            events.map((e) => [e.operation, e.status]),
            [
                ["Unknown", 403],
                ["Unknown", 400],
                ["ListBuckets", 403],
            ],
        );
    });

    it("answers a query string that is not valid percent-encoding with InvalidURI, signed or not", async () => {
        const anonymous = await fetch(`${endpoint}/photos?prefix=%ZZ`);
        assert.equal(anonymous.status, 400);
        assert.match(await anonymous.text(), /<Code>InvalidURI<\/Code>/);
        const signed = await presignedPathUrl(endpoint, credentials, "/photos", { expiresIn: 60 });
        const refused = await fetch(`${signed}&prefix=%ZZ`);
        assert.equal(refused.status, 400);
        assert.match(await refused.text(), /<Code>InvalidURI<\/Code>/);
    });
});
