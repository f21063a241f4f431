// AWS Signature Version 4 verification for S3 requests: Authorization header or presigned query.
// S3 signs the path as sent (no normalisation, no double encoding). Signatures compare in constant time.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { S3Error } from "../errors";

const ALGORITHM = "AWS4-HMAC-SHA256";
const MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

export interface IncomingSigned {
    method: string;
    /** The request target as received: raw (still percent-encoded) path and query. */
    url: string;
    headers: Record<string, string | string[] | undefined>;
}

export interface Verified {
    accessKeyId: string;
    /** x-amz-content-sha256 of a header-signed request ("UNSIGNED-PAYLOAD" for presigned URLs). */
    payloadHash: string;
    /** For chained signatures of aws-chunked bodies. */
    signature: string;
    signingKey: Buffer;
    scope: string;
    amzDate: string;
}

/** AWS's URI encoding: RFC 3986 unreserved characters stay, everything else is %XX (uppercase). */
export function uriEncode(value: string): string {
    return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function hmac(key: Buffer | string, data: string): Buffer {
    return createHmac("sha256", key).update(data).digest();
}

/** Signing keys by secret, date, region and service: four HMACs each, the same for a whole day of requests. */
const signingKeys = new Map<string, Buffer>();
/** Keys kept; more are made when more are in use (one per access key and day, about). */
const SIGNING_KEYS_MAX = 256;

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
    const id = `${date}\n${region}\n${service}\n${secret}`;
    const known = signingKeys.get(id);
    if (known) return known;
    const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
    if (signingKeys.size >= SIGNING_KEYS_MAX) signingKeys.delete(signingKeys.keys().next().value!);
    signingKeys.set(id, key);
    return key;
}

function header(headers: IncomingSigned["headers"], name: string): string | undefined {
    const v = headers[name];
    return Array.isArray(v) ? v.join(",") : v;
}

function parseQuery(rawQuery: string): [string, string][] {
    if (!rawQuery) return [];
    return rawQuery.split("&").map((pair) => {
        const eq = pair.indexOf("=");
        const decode = (s: string) => {
            try {
                return decodeURIComponent(s.replace(/\+/g, "%20"));
            } catch {
                throw new S3Error("InvalidURI", "the query string is not valid percent-encoding");
            }
        };
        return eq < 0 ? [decode(pair), ""] : [decode(pair.slice(0, eq)), decode(pair.slice(eq + 1))];
    });
}

function canonicalQuery(pairs: [string, string][]): string {
    return pairs
        .map(([k, v]) => [uriEncode(k), uriEncode(v)])
        .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
        .map(([k, v]) => `${k}=${v}`)
        .join("&");
}

function parseAmzDate(value: string): Date | undefined {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
    return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : undefined;
}

interface Parsed {
    accessKeyId: string;
    date: string;
    region: string;
    service: string;
    signedHeaders: string[];
    signature: string;
    amzDate: string;
    payloadHash: string;
    query: [string, string][];
    presigned: boolean;
    expires?: number;
}

function parse(req: IncomingSigned): Parsed {
    const q = req.url.indexOf("?");
    const query = parseQuery(q < 0 ? "" : req.url.slice(q + 1));
    const get = (k: string) => query.find(([name]) => name === k)?.[1];
    const malformed = (why: string) => new S3Error("AuthorizationHeaderMalformed", why);

    const authorization = header(req.headers, "authorization");
    if (get("X-Amz-Algorithm") !== undefined) {
        if (get("X-Amz-Algorithm") !== ALGORITHM)
            throw new S3Error("AuthorizationQueryParametersError", "unsupported algorithm");
        const credential = get("X-Amz-Credential") ?? "";
        const [accessKeyId, date, region, service, terminator] = credential.split("/");
        const expires = Number(get("X-Amz-Expires"));
        if (!accessKeyId || terminator !== "aws4_request" || !Number.isInteger(expires)) {
            throw new S3Error("AuthorizationQueryParametersError", "X-Amz-Credential or X-Amz-Expires is malformed");
        }
        if (expires < 1 || expires > MAX_PRESIGN_SECONDS) {
            throw new S3Error(
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be between 1 and 604800 seconds",
            );
        }
        return {
            accessKeyId,
            date,
            region,
            service,
            signedHeaders: (get("X-Amz-SignedHeaders") ?? "").split(";"),
            signature: get("X-Amz-Signature") ?? "",
            amzDate: get("X-Amz-Date") ?? "",
            payloadHash: "UNSIGNED-PAYLOAD",
            query: query.filter(([k]) => k !== "X-Amz-Signature"),
            presigned: true,
            expires,
        };
    }
    if (!authorization) throw new S3Error("AccessDenied", "the request is not signed");
    if (!authorization.startsWith(`${ALGORITHM} `)) throw malformed("unsupported authorization scheme");
    const fields = Object.fromEntries(
        authorization
            .slice(ALGORITHM.length + 1)
            .split(",")
            .map((part) => part.trim().split("=", 2) as [string, string]),
    );
    const [accessKeyId, date, region, service, terminator] = (fields.Credential ?? "").split("/");
    if (!accessKeyId || terminator !== "aws4_request" || !fields.SignedHeaders || !fields.Signature) {
        throw malformed("the Authorization header needs Credential, SignedHeaders and Signature");
    }
    const payloadHash = header(req.headers, "x-amz-content-sha256");
    if (!payloadHash) throw new S3Error("InvalidRequest", "missing x-amz-content-sha256");
    return {
        accessKeyId,
        date,
        region,
        service,
        signedHeaders: fields.SignedHeaders.split(";"),
        signature: fields.Signature,
        amzDate: header(req.headers, "x-amz-date") ?? header(req.headers, "date") ?? "",
        payloadHash,
        query,
        presigned: false,
    };
}

interface Canonical {
    method: string;
    /** The path as sent (percent-encoded), not normalised: S3's rule. */
    path: string;
    query: [string, string][];
    headers: IncomingSigned["headers"];
    payloadHash: string;
}

/** The signature of a request in its canonical form, for `signedHeaders` (lower-case names). */
function signature(key: Buffer, amzDate: string, scope: string, r: Canonical, signedHeaders: string[]): Buffer {
    const canonicalHeaders = signedHeaders
        .map((name) => `${name}:${(header(r.headers, name) ?? "").trim().replace(/\s+/g, " ")}\n`)
        .join("");
    const canonicalRequest = [
        r.method,
        r.path,
        canonicalQuery(r.query),
        canonicalHeaders,
        signedHeaders.join(";"),
        r.payloadHash,
    ].join("\n");
    const hash = createHash("sha256").update(canonicalRequest).digest("hex");
    return hmac(key, [ALGORITHM, amzDate, scope, hash].join("\n"));
}

/**
 * Signs a request the service sends to S3 (its backend) in place: sets x-amz-date, x-amz-content-sha256,
 * the session token if there is one, and Authorization over every header in `headers` (lower-case names).
 */
export function signRequest(
    r: { method: string; path: string; headers: Record<string, string> },
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
    region: string,
    payloadHash: string,
    now: Date = new Date(),
): void {
    const amzDate = now.toISOString().replace(/[-:]|\.\d{3}/g, "");
    const date = amzDate.slice(0, 8);
    r.headers["x-amz-date"] = amzDate;
    r.headers["x-amz-content-sha256"] = payloadHash;
    if (credentials.sessionToken) r.headers["x-amz-security-token"] = credentials.sessionToken;
    const signedHeaders = Object.keys(r.headers).sort();
    const scope = `${date}/${region}/s3/aws4_request`;
    const key = signingKey(credentials.secretAccessKey, date, region, "s3");
    const sig = signature(key, amzDate, scope, { ...r, query: [], payloadHash }, signedHeaders);
    r.headers.authorization =
        `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, ` +
        `SignedHeaders=${signedHeaders.join(";")}, Signature=${sig.toString("hex")}`;
}

/**
 * Verifies a request's signature; throws the S3Error a client expects when it does not hold.
 * `secretOf` returns the secret of an access key, or undefined for an unknown key.
 */
export function verifySignature(
    req: IncomingSigned,
    secretOf: (accessKeyId: string) => string | undefined,
    region: string,
    now: Date = new Date(),
): Verified {
    const p = parse(req);
    const secret = secretOf(p.accessKeyId);
    if (secret === undefined) throw new S3Error("InvalidAccessKeyId", "the access key id does not exist");
    if (p.service !== "s3" || p.region !== region) {
        throw new S3Error(
            "AuthorizationHeaderMalformed",
            `the credential scope must be <date>/${region}/s3/aws4_request`,
            region,
        );
    }
    const signedAt = parseAmzDate(p.amzDate);
    if (!signedAt || p.amzDate.slice(0, 8) !== p.date)
        throw new S3Error("AccessDenied", "x-amz-date is missing or malformed");
    if (p.presigned) {
        if (now.getTime() > signedAt.getTime() + (p.expires ?? 0) * 1000)
            throw new S3Error("AccessDenied", "Request has expired");
        if (signedAt.getTime() - now.getTime() > MAX_SKEW_MS)
            throw new S3Error("AccessDenied", "request is not yet valid");
    } else if (Math.abs(now.getTime() - signedAt.getTime()) > MAX_SKEW_MS) {
        throw new S3Error(
            "RequestTimeTooSkewed",
            "the difference between the request time and the server's time is too large",
        );
    }
    if (!p.signedHeaders.includes("host"))
        throw new S3Error("AuthorizationHeaderMalformed", "the host header must be signed");

    const q = req.url.indexOf("?");
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const scope = `${p.date}/${p.region}/${p.service}/aws4_request`;
    const key = signingKey(secret, p.date, p.region, p.service);
    const canonical = { method: req.method, path, query: p.query, headers: req.headers, payloadHash: p.payloadHash };
    const expected = signature(key, p.amzDate, scope, canonical, p.signedHeaders);
    const given = Buffer.from(p.signature, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new S3Error("SignatureDoesNotMatch", "the request signature does not match");
    }
    return {
        accessKeyId: p.accessKeyId,
        payloadHash: p.payloadHash,
        signature: p.signature,
        signingKey: key,
        scope,
        amzDate: p.amzDate,
    };
}
