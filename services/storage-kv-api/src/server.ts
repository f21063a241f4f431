// The HTTP API (openapi.yaml describes it): bearer tokens, JSON in and out, errors as {error: {code, message}}.
import { createHash, timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import { KvError } from "./objects";
import { type IndexSpec, type Query, type Store } from "./store";

export interface ServerOptions {
    store: Store;
    /** Bearer token -> the client's name. */
    tokens: Record<string, string>;
    maxDocumentBytes?: number;
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
    headers?: Record<string, string>;
}

interface Route {
    method: string;
    /** As written in openapi.yaml: `{name}` is one path segment, `{key}` the rest of the path. */
    path: string;
    handle: (req: Request) => Promise<Reply>;
}

const etagHeader = (version: string) => ({ ETag: version });

function routes(store: Store): Route[] {
    return [
        {
            method: "PUT",
            path: "/v1/collections/{collection}",
            handle: async ({ params, body }) => {
                const input = (await body()) as { indexes?: unknown };
                const indexes = input?.indexes ?? [];
                if (!Array.isArray(indexes)) throw new KvError(400, "InvalidBody", "indexes is a list");
                const specs = indexes.map((i: { field?: unknown; unique?: unknown }): IndexSpec => {
                    if (i?.unique !== undefined && typeof i.unique !== "boolean") {
                        throw new KvError(400, "InvalidBody", "an index's unique is true or false");
                    }
                    return { field: i?.field as string, unique: i?.unique === true };
                });
                const out = await store.defineCollection(params.collection, specs);
                return { status: out.created ? 201 : 200, body: out.schema };
            },
        },
        {
            method: "GET",
            path: "/v1/collections/{collection}",
            handle: async ({ params }) => ({ status: 200, body: await store.schema(params.collection) }),
        },
        {
            method: "POST",
            path: "/v1/collections/{collection}/repair",
            handle: async ({ params }) => ({ status: 200, body: await store.repair(params.collection) }),
        },
        {
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
            method: "POST",
            path: "/v1/collections/{collection}/query",
            handle: async ({ params, body }) => {
                const q = (await body()) as Query;
                if (q === null || typeof q !== "object") throw new KvError(400, "InvalidQuery", "a query is an object");
                if (q.order !== undefined && q.order !== "asc" && q.order !== "desc") {
                    throw new KvError(400, "InvalidQuery", "order is asc or desc");
                }
                return { status: 200, body: await store.query(params.collection, q) };
            },
        },
        {
            method: "GET",
            path: "/v1/collections/{collection}/docs/{key}",
            handle: async ({ params }) => {
                const doc = await store.get(params.collection, params.key);
                if (!doc) throw new KvError(404, "NoSuchDocument", `there is no document ${params.key}`);
                return { status: 200, body: doc.data, headers: etagHeader(doc.version) };
            },
        },
        {
            method: "PUT",
            path: "/v1/collections/{collection}/docs/{key}",
            handle: async ({ params, headers, body }) => {
                const ifNoneMatch = headers["if-none-match"];
                if (ifNoneMatch !== undefined && ifNoneMatch !== "*") {
                    throw new KvError(400, "InvalidHeader", "If-None-Match takes only *");
                }
                const out = await store.put(params.collection, params.key, await body(), {
                    ifMatch: headers["if-match"],
                    ifNoneMatch,
                });
                return {
                    status: out.created ? 201 : 200,
                    body: { key: params.key, version: out.version },
                    headers: etagHeader(out.version),
                };
            },
        },
        {
            method: "DELETE",
            path: "/v1/collections/{collection}/docs/{key}",
            handle: async ({ params, headers }) => {
                await store.delete(params.collection, params.key, { ifMatch: headers["if-match"] });
                return { status: 204 };
            },
        },
    ];
}

/** The routes served, as (method, path) pairs: what openapi.yaml must describe. */
export function servedRoutes(): { method: string; path: string }[] {
    return routes(undefined as unknown as Store).map(({ method, path }) => ({ method, path }));
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
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) throw new KvError(413, "TooLarge", `a document is at most ${maxBytes} bytes`);
        chunks.push(chunk);
    }
    try {
        return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    } catch {
        throw new KvError(400, "InvalidJson", "the body is not valid JSON");
    }
}

export function createKvServer(options: ServerOptions): http.Server {
    const table = routes(options.store).map((r) => ({ ...r, regex: matcher(r.path) }));
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
        if (!token || match.length === 0) throw new KvError(401, "Unauthorized", "a valid bearer token is needed");
        return match[0].name;
    }

    async function handle(req: http.IncomingMessage): Promise<Reply> {
        const url = new URL(req.url ?? "/", "http://kv");
        if (url.pathname === "/healthz" && req.method === "GET") return { status: 200, body: { status: "ok" } };
        authenticate(req.headers.authorization);
        const sameMethod = table.filter((r) => r.method === req.method);
        for (const route of sameMethod) {
            const m = route.regex.exec(url.pathname);
            if (!m) continue;
            let params: Record<string, string>;
            try {
                params = Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]));
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
        const known = table.some((r) => r.regex.test(url.pathname));
        throw known
            ? new KvError(405, "MethodNotAllowed", `${req.method} is not allowed here`)
            : new KvError(404, "NoSuchRoute", "no such path; see openapi.yaml");
    }

    const answer = (res: http.ServerResponse, reply: Reply) => {
        const body = reply.body === undefined ? undefined : JSON.stringify(reply.body);
        res.writeHead(reply.status, { ...(body ? { "Content-Type": "application/json" } : {}), ...reply.headers });
        res.end(body);
    };
    return http.createServer((req, res) => {
        handle(req).then(
            (reply) => answer(res, reply),
            (err: unknown) => {
                const e = err instanceof KvError ? err : new KvError(500, "InternalError", "the request failed");
                answer(res, { status: e.status, body: { error: { code: e.code, message: e.message } } });
                req.resume(); // drain what the client still sends, so it reads the answer
            },
        );
    });
}
