// AWS's own SigV4 signer (@smithy/signature-v4) with node:crypto for hashing: the oracle our verifier is
// checked against, and the way tests make presigned URLs.
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

export class NodeSha256 {
    private hash: Hash | Hmac;
    private readonly secret?: string | Buffer;
    constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
        this.secret =
            secret === undefined || typeof secret === "string"
                ? secret
                : ArrayBuffer.isView(secret)
                  ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength)
                  : Buffer.from(secret);
        this.hash = this.fresh();
    }
    private fresh() {
        return this.secret ? createHmac("sha256", this.secret) : createHash("sha256");
    }
    update(data: string | Uint8Array) {
        this.hash.update(data);
    }
    digest() {
        return Promise.resolve(new Uint8Array(this.hash.digest()));
    }
    reset() {
        this.hash = this.fresh();
    }
}

/** A presigned GET URL for an object, valid for `expiresIn` seconds from `signingDate`. */
export function presignedGetUrl(
    endpoint: string,
    credentials: { accessKeyId: string; secretAccessKey: string },
    bucket: string,
    key: string,
    options: { expiresIn: number; signingDate?: Date },
): Promise<string> {
    return presignedPathUrl(
        endpoint,
        credentials,
        `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`,
        options,
    );
}

/** A presigned GET URL for a path sent as it is written here (already percent-encoded, or not validly). */
export async function presignedPathUrl(
    endpoint: string,
    credentials: { accessKeyId: string; secretAccessKey: string },
    path: string,
    options: { expiresIn: number; signingDate?: Date },
): Promise<string> {
    const url = new URL(endpoint);
    const signed = await new SignatureV4({
        credentials,
        region: "us-east-1",
        service: "s3",
        sha256: NodeSha256,
        uriEscapePath: false,
    }).presign(
        {
            method: "GET",
            protocol: url.protocol,
            hostname: url.hostname,
            port: Number(url.port),
            path,
            query: {},
            // What S3 signs for a presigned URL; the signer hoists it out of the headers it keeps.
            headers: { host: url.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
        },
        options,
    );
    const query = Object.entries(signed.query ?? {})
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join("&");
    const unsent = Object.keys(signed.headers).filter((h) => h.toLowerCase() !== "host");
    if (unsent.length) throw new Error(`the presigned URL needs headers a link cannot carry: ${unsent.join(", ")}`);
    return `${endpoint}${path}?${query}`;
}
