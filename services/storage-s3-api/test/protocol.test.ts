// Small protocol pieces on their own: XML text as clients write it, and which operation a request is.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { S3Error, xmlEscape, xmlUnescape } from "../src/errors";
import { operationOf } from "../src/ops";

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
    const bucketGet = (query: string) => operationOf("GET", true, false, new URLSearchParams(query), false);

    it("tells the listings and the bucket's other GETs apart", () => {
        assert.equal(bucketGet("list-type=2&prefix=a"), "ListObjectsV2");
        assert.equal(bucketGet(""), "ListObjects");
        assert.equal(bucketGet("prefix=a&delimiter=%2F&marker=m&max-keys=2&encoding-type=url"), "ListObjects");
        assert.equal(bucketGet("location"), "GetBucketLocation");
        assert.equal(bucketGet("versioning"), "GetBucket");
        assert.equal(bucketGet("acl"), "GetBucket");
    });
});
