// Our SigV4 verifier against AWS's own signer (@smithy/signature-v4) as the oracle.
import * as assert from "node:assert/strict";
import { SignatureV4 } from "@smithy/signature-v4";
import { verifySignature } from "../src/auth/sigv4";
import { S3Error, type S3ErrorCode } from "../src/errors";
import { NodeSha256 } from "./signer";

const credentials = { accessKeyId: "family-photos", secretAccessKey: "s3cr3t-for-tests-only-0123456789" };
const secretOf = (id: string) => (id === credentials.accessKeyId ? credentials.secretAccessKey : undefined);
const region = "us-east-1";
const signedAt = new Date("2026-11-22T10:00:00Z");
const signer = (secretAccessKey = credentials.secretAccessKey) =>
    new SignatureV4({
        credentials: { ...credentials, secretAccessKey },
        region,
        service: "s3",
        sha256: NodeSha256,
        uriEscapePath: false,
    });

interface Req {
    method: string;
    path: string;
    query?: Record<string, string>;
    headers?: Record<string, string>;
}

function toHttp(r: Req) {
    return {
        method: r.method,
        protocol: "http:",
        hostname: "127.0.0.1",
        port: 9000,
        path: r.path,
        query: r.query ?? {},
        headers: { host: "127.0.0.1:9000", "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...r.headers },
    };
}

/** The request as our server receives it: a raw URL and lower-case headers. */
function incoming(signed: {
    method: string;
    path: string;
    query?: Record<string, unknown>;
    headers: Record<string, string>;
}) {
    const query = Object.entries(signed.query ?? {})
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join("&");
    const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]));
    return { method: signed.method, url: query ? `${signed.path}?${query}` : signed.path, headers };
}

const refusedWith = (code: S3ErrorCode) => (err: unknown) => {
    assert.ok(err instanceof S3Error, String(err));
    assert.equal(err.code, code);
    return true;
};

describe("SigV4 verification", () => {
    const requests: Req[] = [
        { method: "GET", path: "/photos/2026/summer%20trip/IMG_0001.jpg" },
        {
            method: "PUT",
            path: "/photos/a%2Bb%3Dc%26d",
            headers: { "content-type": "image/jpeg", "x-amz-meta-owner": "ana  maria" },
        },
        {
            method: "GET",
            path: "/photos",
            query: { "list-type": "2", prefix: "2026/ä ö", "continuation-token": "a/b+c=" },
        },
        { method: "DELETE", path: "/photos/%E2%9C%93" },
    ];

    for (const r of requests) {
        it(`accepts a header-signed ${r.method} ${r.path}`, async () => {
            const signed = await signer().sign(toHttp(r), { signingDate: signedAt });
            const ok = verifySignature(incoming(signed), secretOf, region, signedAt);
            assert.equal(ok.accessKeyId, credentials.accessKeyId);
        });
    }

    it("accepts a presigned URL until it expires", async () => {
        const signed = await signer().presign(toHttp({ method: "GET", path: "/photos/a.jpg" }), {
            signingDate: signedAt,
            expiresIn: 300,
        });
        const req = incoming(signed);
        assert.equal(
            verifySignature(req, secretOf, region, new Date(signedAt.getTime() + 299_000)).payloadHash,
            "UNSIGNED-PAYLOAD",
        );
        assert.throws(
            () => verifySignature(req, secretOf, region, new Date(signedAt.getTime() + 301_000)),
            refusedWith("AccessDenied"),
        );
    });

    it("refuses a wrong secret", async () => {
        const signed = await signer("wrong-secret").sign(toHttp(requests[0]), { signingDate: signedAt });
        assert.throws(
            () => verifySignature(incoming(signed), secretOf, region, signedAt),
            refusedWith("SignatureDoesNotMatch"),
        );
    });

    it("refuses a request changed after signing", async () => {
        const signed = await signer().sign(toHttp(requests[0]), { signingDate: signedAt });
        const req = incoming(signed);
        assert.throws(
            () => verifySignature({ ...req, url: req.url.replace("IMG_0001", "IMG_0002") }, secretOf, region, signedAt),
            refusedWith("SignatureDoesNotMatch"),
        );
        const tampered = { ...req, headers: { ...req.headers, "x-amz-content-sha256": "0".repeat(64) } };
        assert.throws(
            () => verifySignature(tampered, secretOf, region, signedAt),
            refusedWith("SignatureDoesNotMatch"),
        );
    });

    it("takes each day's and each secret's own signing key (they are cached)", async () => {
        const nextDay = new Date(signedAt.getTime() + 24 * 3600_000);
        const today = await signer().sign(toHttp(requests[0]), { signingDate: signedAt });
        const tomorrow = await signer().sign(toHttp(requests[0]), { signingDate: nextDay });
        verifySignature(incoming(today), secretOf, region, signedAt);
        verifySignature(incoming(tomorrow), secretOf, region, nextDay);
        // The access key's secret changes: the old one is refused from then on, the new one accepted.
        const rotated = "n3w-s3cr3t-for-tests-only-987654";
        const rotatedOf = (id: string) => (id === credentials.accessKeyId ? rotated : undefined);
        assert.throws(
            () => verifySignature(incoming(today), rotatedOf, region, signedAt),
            refusedWith("SignatureDoesNotMatch"),
        );
        const withRotated = await signer(rotated).sign(toHttp(requests[0]), { signingDate: signedAt });
        verifySignature(incoming(withRotated), rotatedOf, region, signedAt);
        assert.throws(
            () => verifySignature(incoming(withRotated), secretOf, region, signedAt),
            refusedWith("SignatureDoesNotMatch"),
        );
    });

    it("refuses an unknown access key", async () => {
        const signed = await new SignatureV4({
            credentials: { accessKeyId: "stranger", secretAccessKey: "x" },
            region,
            service: "s3",
            sha256: NodeSha256,
        }).sign(toHttp(requests[0]), { signingDate: signedAt });
        assert.throws(
            () => verifySignature(incoming(signed), secretOf, region, signedAt),
            refusedWith("InvalidAccessKeyId"),
        );
    });

    it("refuses a clock skew over 15 minutes", async () => {
        const signed = await signer().sign(toHttp(requests[0]), { signingDate: signedAt });
        const later = new Date(signedAt.getTime() + 16 * 60_000);
        assert.throws(
            () => verifySignature(incoming(signed), secretOf, region, later),
            refusedWith("RequestTimeTooSkewed"),
        );
    });

    it("refuses unsigned and malformed requests", () => {
        const base = { method: "GET", url: "/photos/a", headers: { host: "127.0.0.1:9000" } };
        assert.throws(() => verifySignature(base, secretOf, region, signedAt), refusedWith("AccessDenied"));
        const malformed = { ...base, headers: { ...base.headers, authorization: "AWS4-HMAC-SHA256 Credential=x" } };
        assert.throws(
            () => verifySignature(malformed, secretOf, region, signedAt),
            refusedWith("AuthorizationHeaderMalformed"),
        );
        const v2 = { ...base, headers: { ...base.headers, authorization: "AWS family-photos:abc" } };
        assert.throws(
            () => verifySignature(v2, secretOf, region, signedAt),
            refusedWith("AuthorizationHeaderMalformed"),
        );
    });
});
