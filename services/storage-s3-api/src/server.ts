// The S3 front: path-style requests, authenticated before any body is read, objects encrypted on the way in.
// What each request is and does is the operation table's (operations.ts); here: routing, authentication,
// reserved names, observing each request, and the error a failure becomes.
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { S3Client } from "@aws-sdk/client-s3";
import { type Verified, verifySignature } from "./auth/sigv4";
import type { Call, Service } from "./call";
import { errorXml, S3Error } from "./errors";
import { NameCipher } from "./format/names";
import { EncryptedObjects } from "./objects";
import { type Operation, operationFor, type Scope } from "./operations";
import type { RequestEvent } from "./ops";
import type { TransitClient } from "./vault";

export interface ServiceOptions {
    region: string;
    /** Access key id -> secret of the clients allowed in. */
    accessKeys: Record<string, string>;
    backend: S3Client;
    transit: TransitClient;
    etagKey: Buffer;
    /** Turns name privacy on: object keys are encrypted before they reach the backend. */
    nameKey?: Buffer;
    maxObjectSize?: number;
    /** Called once per request when it ends, for metrics and logs. */
    observe?: (event: RequestEvent) => void;
}

interface Route {
    scope: Scope;
    bucket?: string;
    key?: string;
    query: URLSearchParams;
}

function route(url: string): Route {
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
    const [first, ...rest] = path.slice(1).split("/");
    try {
        const bucket = first ? decodeURIComponent(first) : undefined;
        const key = (rest.length ? decodeURIComponent(rest.join("/")) : undefined) || undefined;
        return { scope: !bucket ? "service" : key ? "object" : "bucket", bucket, key, query };
    } catch {
        return { scope: "invalid", query }; // not valid percent-encoding: it names no bucket or key
    }
}

/** Maps a backend (AWS SDK) or Vault failure to what the client should see. */
function asS3Error(err: unknown, notFound: Operation["notFound"] = "NoSuchKey"): S3Error {
    if (err instanceof S3Error) return err;
    const name = (err as { name?: string }).name;
    const missing = name === "NotFound" ? notFound : name;
    if (missing === "NoSuchKey") return new S3Error("NoSuchKey", "the object does not exist");
    if (missing === "NoSuchBucket") return new S3Error("NoSuchBucket", "the bucket does not exist");
    if (name === "InvalidBucketName") return new S3Error("InvalidBucketName", "the bucket name is not valid");
    if (name === "BucketAlreadyOwnedByYou") return new S3Error("BucketAlreadyOwnedByYou", "the bucket exists already");
    if (name === "PreconditionFailed") return new S3Error("PreconditionFailed", "a precondition failed");
    return new S3Error("ServiceUnavailable", "the storage backend or Vault is unavailable");
}

/** The error's answer, or, once the answer began, a cut connection. */
function sendError(req: http.IncomingMessage, res: http.ServerResponse, err: S3Error, requestId: string) {
    if (res.headersSent) {
        res.destroy();
        return;
    }
    const body = req.method === "HEAD" ? undefined : errorXml(err, req.url ?? "/", requestId);
    res.writeHead(
        err.status,
        body ? { "Content-Type": "application/xml", Connection: "close" } : { Connection: "close" },
    );
    res.end(body);
    req.resume(); // drain what the client still sends, so it reads the error
}

/** What an operation's handler is given. */
function callOf(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    expectsContinue: boolean,
    auth: Verified,
    { bucket, key, query }: Route,
    service: Service,
): Call {
    return {
        req,
        res,
        method: req.method ?? "GET",
        auth,
        bucket: bucket ?? "",
        key: key ?? "",
        query,
        service,
        proceed: () => {
            if (expectsContinue) res.writeContinue();
        },
        send: (status, headers = {}, body) => {
            res.writeHead(status, body ? { "Content-Type": "application/xml", ...headers } : headers);
            res.end(body);
        },
    };
}

interface Outcome {
    errorCode?: string;
    /** For operators: what failed underneath (an error class or a socket code, never a message). */
    cause?: string;
}

/** Tells `observe` about the request once its answer is over. */
function observeRequest(
    observe: (event: RequestEvent) => void,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    fields: Pick<RequestEvent, "requestId" | "operation" | "bucket">,
    outcome: Outcome,
) {
    const started = process.hrtime.bigint();
    const { bytesWritten } = req.socket;
    // Counting chunks as they pass; the socket's read count already holds some body at this point.
    let bytesIn = 0;
    req.on("data", (chunk: Buffer) => (bytesIn += chunk.length));
    res.once("close", () => {
        observe({
            ...fields,
            status: res.statusCode,
            errorCode: outcome.errorCode ?? (res.writableFinished ? undefined : "ConnectionCut"),
            cause: outcome.cause,
            durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
            bytesIn,
            bytesOut: req.socket.bytesWritten - bytesWritten,
        });
    });
}

export function createS3Server(options: ServiceOptions): http.Server {
    const names = options.nameKey ? new NameCipher(options.nameKey) : undefined;
    const service: Service = {
        region: options.region,
        backend: options.backend,
        objects: new EncryptedObjects(options.backend, options.transit, options.etagKey, names),
        names,
        maxObjectSize: options.maxObjectSize ?? 5 * 1024 ** 3,
    };

    /** Authenticates the request, then lets its operation answer it. */
    async function handle(
        req: http.IncomingMessage,
        res: http.ServerResponse,
        expectsContinue: boolean,
        target: Route,
        operation: Operation,
    ) {
        const auth = verifySignature(
            { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers },
            (id) => options.accessKeys[id],
            options.region,
        );
        if (target.bucket?.startsWith("."))
            throw new S3Error("InvalidBucketName", "bucket names do not start with a dot");
        if (target.key?.startsWith(".pce/")) throw new S3Error("AccessDenied", "keys under .pce/ are reserved");
        await operation.handle(callOf(req, res, expectsContinue, auth, target, service));
    }

    const onRequest = (expectsContinue: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
        // From randomUUID's buffered entropy: a CSPRNG call of its own per request cost about 80 µs of CPU.
        const requestId = randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase();
        res.setHeader("x-amz-request-id", requestId);
        const target = route(req.url ?? "/");
        const operation = operationFor({
            method: req.method ?? "GET",
            scope: target.scope,
            query: target.query,
            copy: Boolean(req.headers["x-amz-copy-source"]),
        });
        const outcome: Outcome = {};
        if (options.observe) {
            const fields = { requestId, operation: operation.name, bucket: target.bucket };
            observeRequest(options.observe, req, res, fields, outcome);
        }
        handle(req, res, expectsContinue, target, operation).catch((err: unknown) => {
            const s3err = asS3Error(err, operation.notFound);
            outcome.errorCode = s3err.code;
            if (!(err instanceof S3Error)) outcome.cause = (err as { code?: string }).code ?? (err as Error).name;
            sendError(req, res, s3err, requestId);
        });
    };
    const server = http.createServer(onRequest(false));
    // Idle kept-alive connections stay open 65 s, not node:http's 5: a client reusing one just as the server
    // closes it gets ECONNRESET, and clients keep pooled connections until the server closes them.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    // Authenticate before accepting a body: a refused upload never gets sent.
    server.on("checkContinue", onRequest(true));
    return server;
}
