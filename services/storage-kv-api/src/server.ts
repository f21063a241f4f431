// The HTTP API (openapi.yaml describes it): bearer tokens, JSON in and out, errors as {error: {code, message}}.
import { createHash, timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import type { IndexDeclaration } from "./collections";
import { KvError } from "./objects";
import type { Store } from "./store";

export interface ServerOptions {
    store: Store;
    /** Bearer token -> the client's name. */
    tokens: Record<string, string>;
    maxDocumentBytes?: number;
    /** Whether the service takes traffic (start-up repair done, storage reachable, not draining). */
    ready?: () => Promise<boolean>;
    /** One line per request: never tokens, keys or document contents. */
    log?: (fields: Record<string, unknown>) => void;
}

interface Request {
    params: Record<string, string>;
    query: URLSearchParams;
    headers: http.IncomingHttpHeaders;
    body: () => Promise<unknown>;
}

interface Reply {
    status: number;
    body?: unknown;
    /** Sent as it is, instead of `body` as JSON. */
    text?: string;
    headers?: Record<string, string>;
}

interface Route {
    /** Its name in metrics and logs. */
    operation: string;
    method: string;
    /** As written in openapi.yaml: `{name}` is one path segment, `{key}` the rest of the path. */
    path: string;
    /** Served without a token. */
    open?: boolean;
    handle: (req: Request) => Promise<Reply>;
}

const QUERY_PARAMS = ["eq", "gt", "gte", "lt", "lte"];

/** GET query parameters as a query object: bounds are JSON (`eq=42`, `eq="42"`), limit a number. */
function queryFromParams(params: URLSearchParams): Record<string, unknown> {
    const q: Record<string, unknown> = {};
    for (const [name, value] of params) {
        if (QUERY_PARAMS.includes(name)) {
            try {
                q[name] = JSON.parse(value) as unknown;
            } catch {
                throw new KvError(400, "InvalidQuery", `${name} is a JSON value (strings in double quotes)`);
            }
        } else if (name === "limit") {
            q.limit = Number(value);
        } else {
            q[name] = value;
        }
    }
    return q;
}

function routes(store: Store, ready: () => Promise<boolean>): Route[] {
    const doc = (params: Record<string, string>) => [params.collection, params.key] as const;
    return [
        {
            operation: "Metrics",
            method: "GET",
            path: "/metrics",
            open: true,
            handle: () =>
                Promise.resolve({
                    status: 200,
                    text: store.metrics.render(),
                    headers: { "Content-Type": "text/plain; version=0.0.4" },
                }),
        },
        {
            operation: "Health",
            method: "GET",
            path: "/healthz",
            open: true,
            handle: () => Promise.resolve({ status: 200, body: {} }),
        },
        {
            operation: "Ready",
            method: "GET",
            path: "/readyz",
            open: true,
            handle: async () => ((await ready()) ? { status: 200, body: {} } : { status: 503, body: {} }),
        },
        {
            operation: "DefineCollection",
            method: "PUT",
            path: "/v1/collections/{collection}",
            handle: async ({ params, body }) => {
                const input = (await body()) as { indexes?: unknown } | null;
                const indexes = input?.indexes ?? [];
                if (!Array.isArray(indexes) || !indexes.every((i) => i !== null && typeof i === "object")) {
                    throw new KvError(400, "InvalidBody", "indexes is a list of {name?, path, unique?}");
                }
                const out = await store.collections.define(params.collection, indexes as IndexDeclaration[]);
                if (out.schema.indexes.some((i) => i.state === "building")) {
                    store.repairInBackground(params.collection, store.settleMs + 100);
                }
                return { status: out.created ? 201 : 200, body: out.schema };
            },
        },
        {
            operation: "GetCollection",
            method: "GET",
            path: "/v1/collections/{collection}",
            handle: async ({ params }) => ({ status: 200, body: await store.collections.schema(params.collection) }),
        },
        {
            operation: "Repair",
            method: "POST",
            path: "/v1/collections/{collection}/repair",
            handle: async ({ params }) => ({ status: 200, body: await store.repair(params.collection) }),
        },
        {
            operation: "ListDocuments",
            method: "GET",
            path: "/v1/collections/{collection}/docs",
            handle: async ({ params, query }) => {
                const limit = Number(query.get("limit") ?? 100);
                if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
                    throw new KvError(400, "InvalidQuery", "limit is a whole number from 1 to 1000");
                }
                const page = await store.list(
                    params.collection,
                    query.get("prefix") ?? "",
                    limit,
                    query.get("cursor") ?? undefined,
                );
                return { status: 200, body: page };
            },
        },
        {
            operation: "Query",
            method: "POST",
            path: "/v1/collections/{collection}/query",
            handle: async ({ params, body }) => ({
                status: 200,
                body: await store.query(params.collection, await body()),
            }),
        },
        {
            operation: "Query",
            method: "GET",
            path: "/v1/collections/{collection}/query",
            handle: async ({ params, query }) => ({
                status: 200,
                body: await store.query(params.collection, queryFromParams(query)),
            }),
        },
        {
            operation: "GetDocument",
            method: "GET",
            path: "/v1/collections/{collection}/docs/{key}",
            handle: async ({ params }) => {
                const found = await store.get(...doc(params));
                if (!found) throw new KvError(404, "NoSuchDocument", `there is no document ${params.key}`);
                return { status: 200, body: found.data, headers: { ETag: found.version } };
            },
        },
        {
            operation: "PutDocument",
            method: "PUT",
            path: "/v1/collections/{collection}/docs/{key}",
            handle: async ({ params, headers, body }) => {
                const ifNoneMatch = headers["if-none-match"];
                if (ifNoneMatch !== undefined && ifNoneMatch !== "*") {
                    throw new KvError(400, "InvalidHeader", "If-None-Match takes only *");
                }
                const data = await body();
                if (data === null || typeof data !== "object" || Array.isArray(data)) {
                    throw new KvError(400, "InvalidDocument", "a document is a JSON object");
                }
                const out = await store.put(...doc(params), data, { ifMatch: headers["if-match"], ifNoneMatch });
                return {
                    status: out.created ? 201 : 200,
                    body: { key: params.key, version: out.version },
                    headers: { ETag: out.version },
                };
            },
        },
        {
            operation: "DeleteDocument",
            method: "DELETE",
            path: "/v1/collections/{collection}/docs/{key}",
            handle: async ({ params, headers }) => {
                await store.delete(...doc(params), { ifMatch: headers["if-match"] });
                return { status: 204 };
            },
        },
    ];
}

/** The routes served, as (method, path) pairs: what openapi.yaml must describe. */
export function servedRoutes(): { method: string; path: string }[] {
    return routes(undefined as unknown as Store, () => Promise.resolve(true)).map(({ method, path }) => ({
        method,
        path,
    }));
}

/** What a request turned out to be, for metrics and the log line. */
interface Seen {
    route?: string;
    operation?: string;
    client?: string;
}

function matcher(path: string): RegExp {
    const pattern = path
        .split("/")
        .map((part) =>
            part === "{key}" ? "(?<key>.+)" : part.startsWith("{") ? `(?<${part.slice(1, -1)}>[^/]+)` : part,
        )
        .join("/");
    return new RegExp(`^${pattern}$`);
}

async function readJson(req: http.IncomingMessage, maxBytes: number): Promise<unknown> {
    const declared = Number(req.headers["content-length"] ?? 0);
    const tooLarge = () => new KvError(413, "TooLarge", `the body is over the limit of ${maxBytes} bytes`);
    if (declared > maxBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) throw tooLarge();
        chunks.push(chunk);
    }
    try {
        return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    } catch {
        throw new KvError(400, "InvalidJson", "the body is not valid JSON");
    }
}

export function createKvServer(options: ServerOptions): http.Server {
    const ready = options.ready ?? (() => Promise.resolve(true));
    const table = routes(options.store, ready).map((r) => ({ ...r, regex: matcher(r.path) }));
    const hashed = Object.entries(options.tokens).map(([token, name]) => ({
        hash: createHash("sha256").update(token).digest(),
        name,
    }));
    const maxBytes = options.maxDocumentBytes ?? 256 * 1024;

    function authenticate(header: string | undefined): string {
        const token = /^Bearer (\S+)$/.exec(header ?? "")?.[1];
        const hash = createHash("sha256")
            .update(token ?? "")
            .digest();
        // Every token is compared, in constant time, so timing tells nothing about which one came close.
        const match = hashed.filter((t) => timingSafeEqual(t.hash, hash));
        if (!token || match.length === 0) {
            throw new KvError(401, "Unauthorized", "a valid bearer token is needed (Authorization: Bearer <token>)");
        }
        return match[0].name;
    }

    async function handle(req: http.IncomingMessage, seen: Seen): Promise<Reply> {
        const url = new URL(req.url ?? "/", "http://kv");
        const matching = table.filter((r) => r.regex.test(url.pathname));
        const route = matching.find((r) => r.method === req.method);
        if (!route) {
            if (matching.length === 0) throw new KvError(404, "NoSuchRoute", "no such path; see openapi.yaml");
            if (!matching.some((r) => r.open)) seen.client = authenticate(req.headers.authorization);
            throw new KvError(405, "MethodNotAllowed", `${req.method} is not allowed on this path`);
        }
        seen.route = `${route.method} ${route.path}`;
        seen.operation = route.operation;
        if (!route.open) seen.client = authenticate(req.headers.authorization);
        let params: Record<string, string>;
        try {
            const groups = route.regex.exec(url.pathname)?.groups ?? {};
            params = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, decodeURIComponent(v)]));
        } catch {
            throw new KvError(400, "InvalidPath", "the path is not valid percent-encoding");
        }
        return route.handle({
            params,
            query: url.searchParams,
            headers: req.headers,
            body: () => readJson(req, maxBytes),
        });
    }

    const answer = (res: http.ServerResponse, reply: Reply) => {
        const body = reply.text ?? (reply.body === undefined ? undefined : JSON.stringify(reply.body));
        res.writeHead(reply.status, { ...(body ? { "Content-Type": "application/json" } : {}), ...reply.headers });
        res.end(body);
    };
    const server = http.createServer((req, res) => {
        const started = performance.now();
        const seen: Seen = {};
        handle(req, seen)
            .catch((err: unknown) => {
                const e = err instanceof KvError ? err : new KvError(500, "InternalError", "the request failed");
                req.resume(); // drain what the client still sends, so it reads the answer
                const reply: Reply = { status: e.status, body: { error: { code: e.code, message: e.message } } };
                if (e.retryAfterSeconds !== undefined) reply.headers = { "Retry-After": String(e.retryAfterSeconds) };
                return reply;
            })
            .then((reply) => {
                answer(res, reply);
                options.store.metrics.requests.add([seen.operation ?? "Unknown", String(reply.status)]);
                const code = (reply.body as { error?: { code: string } } | undefined)?.error?.code;
                options.log?.({
                    route: seen.route ?? "unknown",
                    client: seen.client,
                    status: reply.status,
                    ...(code ? { error: code } : {}),
                    ms: Math.round((performance.now() - started) * 10) / 10,
                });
            })
            .catch(() => res.destroy());
    });
    // Idle kept-alive connections stay open 65 s, not node:http's 5: a client reusing one just as the server
    // closes it gets ECONNRESET, and clients keep pooled connections until the server closes them.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    return server;
}
