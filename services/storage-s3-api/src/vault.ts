import { randomBytes } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";

// The few transit calls the service makes: a new wrapped data key per object, and unwrapping it on read.
// Unwrapped keys are cached by their wrapped form, so a cached GET costs no Vault call.

export interface DataKey {
    plaintext: Buffer;
    /** The DEK wrapped by the transit key, `vault:vN:...`; the only form that is stored. */
    wrapped: string;
}

function cacheKey(context: Buffer, wrapped: string): string {
    return `${context.toString("base64")}:${wrapped}`;
}

export class VaultError extends Error {
    constructor(
        message: string,
        readonly status: number,
    ) {
        super(message);
        this.name = "VaultError";
    }
}

export interface Answer {
    status: number;
    body: string;
}

/**
 * The kept-alive connections to Vault. Over https it verifies Vault's certificate with `ca` (VAULT_CACERT: in a
 * cluster the internal CA), or with Node's own CAs when none is given.
 */
export function vaultAgent(address: string, ca?: string): http.Agent {
    if (address.startsWith("https:")) return new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) });
    if (ca) throw new Error("storage-s3-api: VAULT_CACERT is set, so VAULT_ADDR must be an https:// address");
    return new http.Agent({ keepAlive: true });
}

/**
 * One request over a kept-alive connection. node:http rather than fetch: a transit call is on the path of
 * every PUT, and fetch costs about three times the CPU per call.
 */
export function request(url: URL, agent: http.Agent, method: string, headers: Record<string, string>, body?: string) {
    const send = url.protocol === "https:" ? https.request : http.request;
    return new Promise<Answer>((resolve, reject) => {
        const req = send(url, { method, agent, headers }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
            res.on("error", reject);
        });
        req.on("error", reject);
        req.end(body);
    });
}

export function parsed<T>(answer: Answer): T | undefined {
    try {
        return JSON.parse(answer.body) as T;
    } catch {
        return undefined;
    }
}

export interface TransitOptions {
    address: string;
    /** Returns the current token (static in tests, a `VaultSession`'s in the service). */
    token: () => string | Promise<string>;
    /**
     * Called when Vault answered 403 to `token`: true when that token no longer works and a new one is in place,
     * so the call is made once more (a `VaultSession`'s `refused`).
     */
    refused?: (token: string) => Promise<boolean>;
    /** The connections to Vault (`vaultAgent`); by default plain ones for `address`. */
    agent?: http.Agent;
    keyName: string;
    mount?: string;
    cacheSize?: number;
}

export class TransitClient {
    private readonly cache = new Map<string, Buffer>();
    /**
     * Vault calls made, for tests and metrics: one per PUT, which makes the next PUT's key (two when no key
     * made ahead was ready: the first PUT, or one after a pause), none per cached GET.
     */
    calls = 0;

    private readonly agent: http.Agent;

    constructor(private readonly options: TransitOptions) {
        this.agent = options.agent ?? vaultAgent(options.address);
    }

    private url(path: string): URL {
        return new URL(`${this.options.address}/v1/${path}`);
    }

    /** Gets a token now (a login at start-up), so that a refused login stops the service before it listens. */
    async login(): Promise<void> {
        await this.options.token();
    }

    /**
     * Throws unless the transit key derives a key per context. Vault ignores `context` for a key made without
     * `derived: true`, silently, and a key cannot be changed to derived later: a data key wrapped for one object
     * would unwrap for any other.
     */
    async assertDerivedKey(): Promise<void> {
        const path = `${this.options.mount ?? "transit"}/keys/${this.options.keyName}`;
        const res = await request(this.url(path), this.agent, "GET", { "X-Vault-Token": await this.options.token() });
        if (res.status !== 200) throw new VaultError(`transit key ${path} cannot be read (${res.status})`, res.status);
        if (parsed<{ data?: { derived?: boolean } }>(res)?.data?.derived !== true) {
            throw new Error(
                `storage-s3-api: transit key ${path} was not created with derived=true, so it would ignore each ` +
                    "object's context; create a new key with derived=true and set TRANSIT_KEY to it",
            );
        }
    }

    /** Throws unless Vault answers and is unsealed (a standby is fine: it forwards). */
    async health(): Promise<void> {
        const res = await request(this.url("sys/health?standbyok=true"), this.agent, "GET", {}).catch(() => undefined);
        if (res?.status !== 200)
            throw new Error(res ? `Vault answers ${res.status} (sealed or not initialised)` : "Vault is unreachable");
    }

    private async call(path: string, body: Record<string, unknown>): Promise<Record<string, string>> {
        const mount = this.options.mount ?? "transit";
        this.calls++;
        const payload = JSON.stringify(body);
        const send = (token: string) =>
            request(
                this.url(`${mount}/${path}/${this.options.keyName}`),
                this.agent,
                "POST",
                {
                    "X-Vault-Token": token,
                    "Content-Type": "application/json",
                    "Content-Length": String(Buffer.byteLength(payload)),
                },
                payload,
            );
        const token = await this.options.token();
        let res = await send(token);
        // An expired or revoked token: once a new one is in place, the call is made again, once.
        if (res.status === 403 && (await this.options.refused?.(token))) res = await send(await this.options.token());
        if (res.status !== 200) {
            // Vault's error bodies name the problem, never key material.
            const detail = parsed<{ errors?: string[] }>(res)?.errors?.join("; ");
            throw new VaultError(`transit ${path} failed with ${res.status}${detail ? `: ${detail}` : ""}`, res.status);
        }
        const data = parsed<{ data?: Record<string, string> }>(res)?.data;
        if (!data) throw new VaultError(`transit ${path} answered without data`, res.status);
        return data;
    }

    /**
     * A fresh 256-bit data key, wrapped by transit under a key derived for `context` (the object id), so a
     * wrapped key moved to another object does not unwrap. The transit key is created with `derived: true`;
     * derivation, unlike associated data, survives `rewrap`.
     */
    async newDataKey(context: Buffer): Promise<DataKey> {
        const plaintext = randomBytes(32);
        const data = await this.call("encrypt", {
            plaintext: plaintext.toString("base64"),
            context: context.toString("base64"),
        });
        const key = { plaintext, wrapped: data.ciphertext };
        this.remember(context, key.wrapped, key.plaintext);
        return key;
    }

    async unwrap(wrapped: string, context: Buffer): Promise<Buffer> {
        const cached = this.cache.get(cacheKey(context, wrapped));
        if (cached) {
            // Refresh its place: the map's insertion order is the eviction order.
            this.cache.delete(cacheKey(context, wrapped));
            this.cache.set(cacheKey(context, wrapped), cached);
            return cached;
        }
        const data = await this.call("decrypt", { ciphertext: wrapped, context: context.toString("base64") });
        const plaintext = Buffer.from(data.plaintext, "base64");
        this.remember(context, wrapped, plaintext);
        return plaintext;
    }

    /** Re-wraps data keys under the transit key's newest version; Vault never returns them in plain text. */
    async rewrap(items: { wrapped: string; context: Buffer }[]): Promise<string[]> {
        if (items.length === 0) return [];
        const data = (await this.call("rewrap", {
            batch_input: items.map((i) => ({ ciphertext: i.wrapped, context: i.context.toString("base64") })),
        })) as unknown as { batch_results: { ciphertext?: string; error?: string }[] };
        return data.batch_results.map((r, i) => {
            if (!r.ciphertext)
                throw new VaultError(`transit rewrap of item ${i} failed: ${r.error ?? "no ciphertext"}`, 400);
            return r.ciphertext;
        });
    }

    private remember(context: Buffer, wrapped: string, plaintext: Buffer): void {
        const max = this.options.cacheSize ?? 10_000;
        if (this.cache.size >= max) this.cache.delete(this.cache.keys().next().value as string);
        this.cache.set(cacheKey(context, wrapped), plaintext);
    }
}
