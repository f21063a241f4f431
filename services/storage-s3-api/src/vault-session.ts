// The service's Vault token, held in memory only. In a pod it logs in with Vault's Kubernetes auth method as
// its own service account (the projected token, read anew at each login because the kubelet rotates it);
// for local runs a token file stands in for the login. One session serves every request: the token is renewed
// while half its TTL is left, replaced by a new login when it cannot be renewed or Vault refuses it, and
// concurrent requests share one login or renewal.
import * as fs from "node:fs";
import type * as http from "node:http";
import { parsed, request, VaultError } from "./vault";

export interface Login {
    token: string;
    /** Seconds the token lives; 0 when unknown (a token file): it is kept until Vault refuses it. */
    ttlSeconds: number;
    renewable: boolean;
}

export interface SessionOptions {
    address: string;
    agent: http.Agent;
    /** A new token: the Kubernetes login (`kubernetesLogin`) or a token file (`tokenFileLogin`). */
    login: () => Promise<Login>;
    /** What happened, for the log; never carries the token. */
    onEvent?: (message: string, fields: Record<string, unknown>) => void;
}

interface Held {
    token: string;
    renewable: boolean;
    /** The TTL the last login gave: a renewal that gives less than half of it is near the token's max TTL. */
    loginTtlMs: number;
    /** After this a request renews in the background; after `usableUntil` it waits for a new token. */
    renewAt: number;
    usableUntil: number;
}

const hold = (login: Login, since: number, loginTtlMs: number): Held => ({
    token: login.token,
    renewable: login.renewable,
    loginTtlMs,
    renewAt: login.ttlSeconds > 0 ? since + login.ttlSeconds * 500 : Infinity,
    // A tenth of the TTL is left for the request's way to Vault and for clocks.
    usableUntil: login.ttlSeconds > 0 ? since + login.ttlSeconds * 900 : Infinity,
});

export class VaultSession {
    private held?: Held;
    private pending?: Promise<string>;

    constructor(private readonly options: SessionOptions) {}

    /** The current token; logs in first when there is none or it is about to expire. */
    async token(): Promise<string> {
        const held = this.held;
        const now = Date.now();
        if (!held || now >= held.usableUntil) return this.refresh();
        if (now >= held.renewAt)
            this.refresh().catch((err: unknown) =>
                this.options.onEvent?.("vault token refresh failed", {
                    error: err instanceof Error ? err.message : "unknown",
                }),
            );
        return held.token;
    }

    /**
     * Vault answered 403 to `token`. Either the token expired or was revoked, or the policy does not allow the
     * call; Vault's lookup of the token tells which. True when a new token is in place and the call may be
     * repeated; false when the token is valid (the refusal is the policy's, and a new login would not help).
     */
    async refused(token: string): Promise<boolean> {
        if (this.held && this.held.token !== token) return true; // already replaced
        if (this.held && (await this.call("auth/token/lookup-self", token, "GET")).status === 200) return false;
        if (this.held?.token === token) this.held = undefined;
        await this.refresh();
        return true;
    }

    /** One renewal or login at a time: concurrent callers share it. */
    private refresh(): Promise<string> {
        this.pending ??= this.renewOrLogin().finally(() => (this.pending = undefined));
        return this.pending;
    }

    private async renewOrLogin(): Promise<string> {
        const held = this.held;
        if (held?.renewable && Date.now() < held.usableUntil) {
            const since = Date.now();
            const renewed = await this.renew(held.token).catch(() => undefined);
            if (renewed && renewed.ttlSeconds * 1000 >= held.loginTtlMs / 2) {
                this.held = hold(renewed, since, held.loginTtlMs);
                this.options.onEvent?.("vault token renewed", { ttlSeconds: renewed.ttlSeconds });
                return renewed.token;
            }
        }
        const since = Date.now();
        const login = await this.options.login();
        this.held = hold(login, since, login.ttlSeconds * 1000);
        this.options.onEvent?.("vault login", { ttlSeconds: login.ttlSeconds, renewable: login.renewable });
        return login.token;
    }

    private async renew(token: string): Promise<Login> {
        const res = await this.call("auth/token/renew-self", token, "POST", "{}");
        const auth = parsed<{ auth?: VaultAuth }>(res)?.auth;
        if (res.status !== 200 || !auth?.client_token)
            throw new VaultError(`renew-self answered ${res.status}`, res.status);
        return loginOf(auth);
    }

    private call(path: string, token: string, method: string, body?: string) {
        const headers: Record<string, string> = { "X-Vault-Token": token };
        if (body !== undefined) Object.assign(headers, { "Content-Type": "application/json" });
        return request(new URL(`${this.options.address}/v1/${path}`), this.options.agent, method, headers, body);
    }
}

interface VaultAuth {
    client_token: string;
    lease_duration: number;
    renewable: boolean;
}

const loginOf = (auth: VaultAuth): Login => ({
    token: auth.client_token,
    ttlSeconds: auth.lease_duration,
    renewable: auth.renewable,
});

export interface KubernetesLoginOptions {
    address: string;
    agent: http.Agent;
    /** Where the Kubernetes auth method is mounted (`kubernetes`). */
    mount: string;
    role: string;
    /** The projected service-account token, read at each login. */
    jwtFile: string;
}

/** Vault's Kubernetes auth: POST auth/<mount>/login {role, jwt}. Its errors name the role, never the JWT. */
export function kubernetesLogin(o: KubernetesLoginOptions): () => Promise<Login> {
    const where = `role "${o.role}" at auth/${o.mount}`;
    return async () => {
        let jwt: string;
        try {
            jwt = fs.readFileSync(o.jwtFile, "utf8").trim();
        } catch {
            throw new Error(
                `storage-s3-api: cannot log in to Vault as ${where}: VAULT_JWT_FILE ${o.jwtFile} is not readable`,
            );
        }
        const payload = JSON.stringify({ role: o.role, jwt });
        const res = await request(
            new URL(`${o.address}/v1/auth/${o.mount}/login`),
            o.agent,
            "POST",
            { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(payload)) },
            payload,
        ).catch((err: unknown) => {
            throw new Error(
                `storage-s3-api: cannot log in to Vault as ${where}: ${err instanceof Error ? err.message : "unreachable"}`,
            );
        });
        const answer = parsed<{ auth?: VaultAuth; errors?: string[] }>(res);
        if (res.status !== 200 || !answer?.auth?.client_token) {
            // Vault's errors name the problem ("service account name not authorized"); never echo the JWT.
            const detail = (answer?.errors ?? []).join("; ").replaceAll(jwt, "[the service-account token]");
            throw new VaultError(
                `storage-s3-api: Vault refused the login as ${where} (${res.status}${detail ? `: ${detail}` : ""})`,
                res.status,
            );
        }
        return loginOf(answer.auth);
    };
}

/**
 * A token from a file (VAULT_TOKEN_FILE: a local run, or a token that something else keeps fresh in the file):
 * read at the first call and again whenever Vault refuses the one read before.
 */
export function tokenFileLogin(file: string): () => Promise<Login> {
    return () => {
        try {
            return Promise.resolve({ token: fs.readFileSync(file, "utf8").trim(), ttlSeconds: 0, renewable: false });
        } catch {
            return Promise.reject(new Error(`storage-s3-api: VAULT_TOKEN_FILE ${file} is not readable`));
        }
    };
}
