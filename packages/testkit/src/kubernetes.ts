// A stand-in for the one part of the Kubernetes API that Vault's Kubernetes auth method calls: the TokenReview
// API, over HTTPS on loopback with a certificate from a test CA. It checks service-account tokens as the API
// server does — an RS256 JWT signed by its key, its issuer, expiry, audiences and the `kubernetes.io` claims of a
// projected token for a service account that exists — and mints such tokens for the tests. Also: OpenBao in dev
// mode over TLS, for clients that must verify Vault's certificate with a CA file.
import { execFileSync, spawn } from "node:child_process";
import { createSign, createVerify, generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import type * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, type OpenBaoServer, waitUntil } from "./servers";
import { toolsBinDir } from "./tools";

/** A CA and a server certificate it signed for 127.0.0.1 and localhost, made with the openssl CLI in `dir`. */
export function testTls(dir: string): { caCert: string; cert: string; key: string; caFile: string } {
    const file = (name: string) => path.join(dir, name);
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"];
    const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
    openssl([
        "req", "-x509", ...ec, "-keyout", file("ca.key"), "-out", file("ca.crt"), "-subj", "/CN=peoples-cloud test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]); // prettier-ignore
    openssl([
        "req", "-x509", ...ec, "-keyout", file("tls.key"), "-out", file("tls.crt"), "-subj", "/CN=localhost",
        "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth",
    ]); // prettier-ignore
    fs.rmSync(file("ca.key"));
    const read = (name: string) => fs.readFileSync(file(name), "utf8");
    return { caCert: read("ca.crt"), cert: read("tls.crt"), key: read("tls.key"), caFile: file("ca.crt") };
}

export interface ServiceAccountTokenOptions {
    namespace: string;
    serviceAccount: string;
    /** `aud`; by default the API server's own audience (the token a pod gets without a projected volume). */
    audiences?: string[];
    /** Seconds until `exp` (negative: already expired). Default 3600. */
    ttlSeconds?: number;
    /** Sign with another key: a forged token. */
    signWith?: KeyObject;
}

export interface KubernetesApi {
    /** https://127.0.0.1:<port>: Vault's `kubernetes_host`. */
    url: string;
    /** The test CA (PEM) that signed the API's certificate: Vault's `kubernetes_ca_cert`; and its file. */
    caCert: string;
    caFile: string;
    /** The `iss` of its tokens. */
    issuer: string;
    /** The API server's own audience, which a TokenReview without audiences checks for. */
    apiAudience: string;
    /** A token of Vault's own service account, allowed to create TokenReviews: `token_reviewer_jwt`. */
    reviewerToken: string;
    /** A service-account token as the kubelet projects it into a pod. */
    serviceAccountToken(options: ServiceAccountTokenOptions): string;
    /** Each TokenReview answered: the user it authenticated, or the error. */
    reviews: { username?: string; error?: string }[];
    stop(): Promise<void>;
}

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

interface Claims {
    iss?: string;
    sub?: string;
    aud?: string | string[];
    exp?: number;
    nbf?: number;
    "kubernetes.io"?: { namespace?: string; serviceaccount?: { name?: string; uid?: string } };
}

/** Starts the stand-in TokenReview API on loopback. */
export async function startKubernetesApi(): Promise<KubernetesApi> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-kube-api-"));
    const tls = testTls(dir);
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const kid = randomBytes(8).toString("hex");
    const issuer = "https://kubernetes.default.svc.cluster.local";
    const apiAudience = issuer;
    /** The service accounts that exist, namespace/name -> uid. */
    const accounts = new Map<string, string>();
    const reviews: KubernetesApi["reviews"] = [];

    const serviceAccountToken = (o: ServiceAccountTokenOptions) => {
        const key = `${o.namespace}/${o.serviceAccount}`;
        if (!accounts.has(key)) accounts.set(key, randomUUID());
        const now = Math.floor(Date.now() / 1000);
        const header = b64url({ alg: "RS256", kid });
        const payload = b64url({
            aud: o.audiences ?? [apiAudience],
            exp: now + (o.ttlSeconds ?? 3600),
            iat: now,
            nbf: now,
            iss: issuer,
            jti: randomUUID(),
            sub: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
            "kubernetes.io": {
                namespace: o.namespace,
                node: { name: "node-1", uid: randomUUID() },
                pod: { name: `${o.serviceAccount}-0`, uid: randomUUID() },
                serviceaccount: { name: o.serviceAccount, uid: accounts.get(key) },
            },
        });
        const signature = createSign("RSA-SHA256")
            .update(`${header}.${payload}`)
            .sign(o.signWith ?? privateKey)
            .toString("base64url");
        return `${header}.${payload}.${signature}`;
    };

    /** The user a token authenticates, checked for `audiences` (the API's own when none are asked for). */
    const authenticate = (token: string, audiences: string[]) => {
        const [header, payload, signature] = token.split(".");
        if (!signature) throw new Error("invalid bearer token");
        const alg = (JSON.parse(Buffer.from(header, "base64url").toString()) as { alg?: string }).alg;
        const signed = createVerify("RSA-SHA256").update(`${header}.${payload}`);
        if (alg !== "RS256" || !signed.verify(publicKey, Buffer.from(signature, "base64url")))
            throw new Error("invalid bearer token, square/go-jose: error in cryptographic primitive");
        const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Claims;
        const now = Date.now() / 1000;
        if (claims.iss !== issuer) throw new Error("invalid bearer token, issuer is not trusted");
        if (!claims.exp || claims.exp < now) throw new Error("invalid bearer token, token has expired");
        if (claims.nbf && claims.nbf > now + 60) throw new Error("invalid bearer token, token is not valid yet");
        const match = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(claims.sub ?? "");
        const k8s = claims["kubernetes.io"];
        if (!match || k8s?.namespace !== match[1] || k8s.serviceaccount?.name !== match[2])
            throw new Error("invalid bearer token, not a service account token");
        const uid = accounts.get(`${match[1]}/${match[2]}`);
        if (!uid || k8s.serviceaccount.uid !== uid)
            throw new Error(`invalid bearer token, service account ${match[1]}/${match[2]} has been deleted`);
        const tokenAudiences = typeof claims.aud === "string" ? [claims.aud] : (claims.aud ?? []);
        const granted = tokenAudiences.filter((a) => audiences.includes(a));
        if (granted.length === 0)
            throw new Error("invalid bearer token, token audiences is invalid for the target audiences");
        const [, namespace, name] = match;
        return {
            user: {
                username: `system:serviceaccount:${namespace}:${name}`,
                uid,
                groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
            },
            audiences: granted,
        };
    };

    const reviewerToken = serviceAccountToken({ namespace: "vault", serviceAccount: "vault" });
    const status = (res: http.ServerResponse, code: number, reason: string, message: string) => {
        res.writeHead(code, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code }));
    };

    const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            if (req.method !== "POST" || req.url !== "/apis/authentication.k8s.io/v1/tokenreviews")
                return status(res, 404, "NotFound", "the server could not find the requested resource");
            // The caller must itself be authenticated (Vault presents its reviewer token).
            const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
            try {
                if (!bearer) throw new Error("no bearer token");
                authenticate(bearer, [apiAudience]);
            } catch {
                return status(res, 401, "Unauthorized", "Unauthorized");
            }
            let review: { apiVersion?: string; kind?: string; spec?: { token?: string; audiences?: string[] } };
            try {
                review = JSON.parse(Buffer.concat(chunks).toString()) as typeof review;
            } catch {
                return status(res, 400, "BadRequest", "the body is not a TokenReview");
            }
            const audiences = review.spec?.audiences?.length ? review.spec.audiences : [apiAudience];
            let result: object;
            try {
                const granted = authenticate(review.spec?.token ?? "", audiences);
                result = { authenticated: true, ...granted };
                reviews.push({ username: granted.user.username });
            } catch (err) {
                result = { user: {}, error: (err as Error).message };
                reviews.push({ error: (err as Error).message });
            }
            res.writeHead(201, { "Content-Type": "application/json" });
            res.end(
                JSON.stringify({
                    kind: "TokenReview",
                    apiVersion: "authentication.k8s.io/v1",
                    metadata: { creationTimestamp: null },
                    spec: { audiences: review.spec?.audiences },
                    status: result,
                }),
            );
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
        url,
        caCert: tls.caCert,
        caFile: tls.caFile,
        issuer,
        apiAudience,
        reviewerToken,
        serviceAccountToken,
        reviews,
        stop: async () => {
            server.closeAllConnections();
            await new Promise((resolve) => server.close(resolve));
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

export interface TlsOpenBaoServer extends OpenBaoServer {
    /** The CA file that verifies its certificate (VAULT_CACERT). */
    caFile: string;
}

/** An OpenBao dev server over HTTPS on loopback, with the CA and certificate it generates (`-dev-tls`). */
export async function startOpenBaoDevTls(): Promise<TlsOpenBaoServer> {
    const port = await freePort();
    const rootToken = randomBytes(18).toString("base64url");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-openbao-tls-"));
    const child = spawn(
        path.join(toolsBinDir("servers"), "bao"),
        ["server", "-dev", "-dev-tls", `-dev-tls-cert-dir=${dir}`, `-dev-listen-address=127.0.0.1:${port}`],
        {
            env: { ...process.env, BAO_DEV_ROOT_TOKEN_ID: rootToken, HOME: os.tmpdir() },
            stdio: ["ignore", "pipe", "pipe"],
        },
    );
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const url = `https://127.0.0.1:${port}`;
    const caFile = path.join(dir, "vault-ca.pem");
    await waitUntil(
        "openbao (tls)",
        () =>
            new Promise<boolean>((resolve) => {
                if (!fs.existsSync(caFile)) return resolve(false);
                https
                    .get(`${url}/v1/sys/health`, { ca: fs.readFileSync(caFile) }, (res) => {
                        res.resume();
                        resolve(res.statusCode === 200);
                    })
                    .on("error", () => resolve(false));
            }),
        child,
    );
    return {
        url,
        dir,
        caFile,
        rootToken,
        log: () => output,
        stop: async () => {
            if (child.exitCode === null) {
                const exited = new Promise((r) => child.once("exit", r));
                child.kill("SIGTERM");
                await exited;
            }
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** A request to an OpenBao server over HTTPS (verified with its CA), with its root token; fails on any non-2xx. */
export async function baoApiTls(
    bao: TlsOpenBaoServer,
    method: string,
    apiPath: string,
    body?: unknown,
): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = https.request(
            `${bao.url}/v1/${apiPath}`,
            { method, ca: fs.readFileSync(bao.caFile), headers: { "X-Vault-Token": bao.rootToken ?? "" } },
            (res) => {
                let text = "";
                res.on("data", (d: Buffer) => (text += d.toString()));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
            },
        );
        req.on("error", reject);
        req.end(payload);
    });
    if (answer.status < 200 || answer.status > 299)
        throw new Error(`${method} ${apiPath}: ${answer.status} ${answer.text}`);
    return answer.text ? JSON.parse(answer.text) : {};
}
