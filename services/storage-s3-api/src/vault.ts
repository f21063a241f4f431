import { randomBytes } from "node:crypto";

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

export interface TransitOptions {
    address: string;
    /** Returns the current token (static in tests, from Kubernetes auth in a cluster). */
    token: () => string | Promise<string>;
    keyName: string;
    mount?: string;
    cacheSize?: number;
}

export class TransitClient {
    private readonly cache = new Map<string, Buffer>();
    /** Vault calls made, for tests and metrics (at most one per PUT, none per cached GET). */
    calls = 0;

    constructor(private readonly options: TransitOptions) {}

    /** Throws unless Vault answers and is unsealed (a standby is fine: it forwards). */
    async health(): Promise<void> {
        const res = await fetch(`${this.options.address}/v1/sys/health?standbyok=true`).catch(() => undefined);
        if (!res?.ok)
            throw new Error(res ? `Vault answers ${res.status} (sealed or not initialised)` : "Vault is unreachable");
    }

    private async call(path: string, body: Record<string, unknown>): Promise<Record<string, string>> {
        const mount = this.options.mount ?? "transit";
        this.calls++;
        const res = await fetch(`${this.options.address}/v1/${mount}/${path}/${this.options.keyName}`, {
            method: "POST",
            headers: { "X-Vault-Token": await this.options.token(), "Content-Type": "application/json" },
            body: JSON.stringify(body),
        });
        if (!res.ok) {
            // Vault's error bodies name the problem, never key material.
            const detail = ((await res.json().catch(() => ({}))) as { errors?: string[] }).errors?.join("; ");
            throw new VaultError(`transit ${path} failed with ${res.status}${detail ? `: ${detail}` : ""}`, res.status);
        }
        return ((await res.json()) as { data: Record<string, string> }).data;
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
