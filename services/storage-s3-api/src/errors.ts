// S3 errors as clients expect them: a code, its HTTP status, and the XML body.

const statusOf = {
    AccessDenied: 403,
    BadDigest: 400,
    AuthorizationHeaderMalformed: 400,
    AuthorizationQueryParametersError: 400,
    BucketAlreadyOwnedByYou: 409,
    EntityTooLarge: 400,
    IncompleteBody: 400,
    InternalError: 500,
    InvalidAccessKeyId: 403,
    InvalidArgument: 400,
    InvalidDigest: 400,
    InvalidBucketName: 400,
    InvalidPart: 400,
    InvalidPartOrder: 400,
    InvalidRange: 416,
    InvalidRequest: 400,
    InvalidURI: 400,
    KeyTooLongError: 400,
    MalformedXML: 400,
    MethodNotAllowed: 405,
    NoSuchBucket: 404,
    NoSuchKey: 404,
    NoSuchUpload: 404,
    NotImplemented: 501,
    PreconditionFailed: 412,
    RequestTimeTooSkewed: 403,
    ServiceUnavailable: 503,
    SignatureDoesNotMatch: 403,
    XAmzContentSHA256Mismatch: 400,
} as const;

export type S3ErrorCode = keyof typeof statusOf;

export class S3Error extends Error {
    readonly status: number;
    constructor(
        readonly code: S3ErrorCode,
        message: string,
        /** The region a request should have been signed for, as S3 names it in its answer. */
        readonly region?: string,
    ) {
        super(message);
        this.name = "S3Error";
        this.status = statusOf[code];
    }
}

/** XML's five named entities, the characters they stand for. */
const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", apos: "'", quot: '"' };
const ESCAPED = Object.fromEntries(Object.entries(NAMED).map(([name, char]) => [char, `&${name};`]));

export function xmlEscape(value: string): string {
    return value.replace(/[<>&'"]/g, (c) => ESCAPED[c]);
}

/**
 * The text of an XML element: named references and numeric ones, which Go's encoding/xml writes for quotes
 * (`&#34;`: the ETags in rclone's CompleteMultipartUpload, for one).
 */
export function xmlUnescape(value: string): string {
    return value.replace(/&(?:(lt|gt|amp|apos|quot)|#(\d{1,7})|#x([0-9a-fA-F]{1,6}));/g, (_, name, dec, hex) => {
        if (name) return NAMED[name as string];
        const code = dec ? Number(dec) : parseInt(hex as string, 16);
        if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) || code === 0) {
            throw new S3Error("MalformedXML", "the body refers to a character that does not exist");
        }
        return String.fromCodePoint(code);
    });
}

export function errorXml(err: S3Error, resource: string, requestId: string): string {
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
        `<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message>` +
        `<Resource>${xmlEscape(resource)}</Resource><RequestId>${requestId}</RequestId>` +
        `${err.region ? `<Region>${xmlEscape(err.region)}</Region>` : ""}</Error>`
    );
}
