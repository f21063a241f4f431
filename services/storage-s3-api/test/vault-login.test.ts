// The service as a pod runs it: no Vault token is given to it. It logs in to a real OpenBao (over TLS, verified
// with VAULT_CACERT) with the Kubernetes auth method as its service account; OpenBao reviews the projected token
// with a stand-in of the Kubernetes TokenReview API (testkit). Tokens that expire under continuous requests are
// renewed or replaced without a failed request; a wrong role or another service account's token stops it at
// start, naming the role; its output never holds a token or a JWT.
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
    baoApiTls,
    type KubernetesApi,
    type S3Server,
    startKubernetesApi,
    startMinio,
    startOpenBaoDevTls,
    type TlsOpenBaoServer,
} from "@peoples-cloud/testkit";
import { vaultAgent } from "../src/vault";
import { kubernetesLogin, VaultSession } from "../src/vault-session";
import { type ServiceProcess, spawnService } from "./chain";

const execFileAsync = promisify(execFile);
const NAMESPACE = "storage";

/** What a Vault token or a JWT looks like, wherever it would be printed. */
const TOKEN_SHAPES = [/\b(hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}/, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/];

describe("storage-s3-api logs in to Vault as its service account", function () {
    this.timeout(180_000);
    let minio: S3Server;
    let bao: TlsOpenBaoServer;
    let api: KubernetesApi;
    let work: string;
    const running: ServiceProcess[] = [];
    const jwts: string[] = [];

    /** A projected token of `serviceAccount` (audience "vault" unless given), in a file as the kubelet writes it. */
    function projectedToken(
        serviceAccount: string,
        options: { file?: string; forged?: boolean; ttlSeconds?: number; audiences?: string[] } = {},
    ): string {
        const jwt = api.serviceAccountToken({
            namespace: NAMESPACE,
            serviceAccount,
            audiences: "audiences" in options ? options.audiences : ["vault"],
            ttlSeconds: options.ttlSeconds,
            ...(options.forged ? { signWith: generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey } : {}),
        });
        jwts.push(jwt);
        const file = options.file ?? path.join(work, `${serviceAccount}-${randomBytes(4).toString("hex")}.jwt`);
        fs.writeFileSync(file, jwt, { mode: 0o600 });
        return file;
    }

    /** A Kubernetes auth role as the Vault layer writes one (components/vault/config.ts), with its TTLs. */
    async function role(name: string, serviceAccount: string, ttl = "1h", maxTtl = "24h") {
        await baoApiTls(bao, "POST", `auth/kubernetes/role/${name}`, {
            bound_service_account_names: [serviceAccount],
            bound_service_account_namespaces: [NAMESPACE],
            token_policies: ["storage-s3-api"],
            token_ttl: ttl,
            token_max_ttl: maxTtl,
            audience: "vault",
        });
    }

    async function start(roleName: string, jwtFile: string, caFile = bao.caFile): Promise<ServiceProcess> {
        const service = await spawnService(
            minio,
            { url: bao.url },
            {
                env: {
                    VAULT_TOKEN_FILE: "",
                    VAULT_CACERT: caFile,
                    VAULT_AUTH_ROLE: roleName,
                    VAULT_JWT_FILE: jwtFile,
                },
            },
        );
        running.push(service);
        return service;
    }

    function assertNoSecrets(output: string) {
        for (const shape of TOKEN_SHAPES) assert.doesNotMatch(output, shape, "the output holds a token or a JWT");
        for (const jwt of jwts) assert.ok(!output.includes(jwt.split(".")[2]), "the output holds a JWT");
        assert.ok(!output.includes(bao.rootToken!), "the output holds the root token");
    }

    before(async () => {
        work = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-vault-login-"));
        [minio, bao, api] = await Promise.all([startMinio(), startOpenBaoDevTls(), startKubernetesApi()]);
        await baoApiTls(bao, "POST", "sys/mounts/transit", { type: "transit" });
        await baoApiTls(bao, "POST", "transit/keys/storage-s3-api", { type: "aes256-gcm96", derived: true });
        // The transit part of the app policy the Vault layer writes (components/vault/policies.ts).
        const rule = (p: string, caps: string) => `path "${p}" {\n  capabilities = [${caps}]\n}`;
        await baoApiTls(bao, "PUT", "sys/policies/acl/storage-s3-api", {
            policy: [
                ...["encrypt", "decrypt", "rewrap"].map((op) => rule(`transit/${op}/storage-s3-api`, '"update"')),
                rule("transit/keys/storage-s3-api", '"read"'),
            ].join("\n"),
        });
        await baoApiTls(bao, "POST", "sys/auth/kubernetes", { type: "kubernetes" });
        await baoApiTls(bao, "POST", "auth/kubernetes/config", {
            kubernetes_host: api.url,
            kubernetes_ca_cert: api.caCert,
            token_reviewer_jwt: api.reviewerToken,
            disable_local_ca_jwt: true,
        });
        await role("storage-s3-api", "storage-s3-api");
        await role("storage-kv-api", "storage-kv-api");
    });
    after(async () => {
        await Promise.all(running.map((s) => s.stop()));
        await Promise.all([minio?.stop(), bao?.stop(), api?.stop()]);
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("logs in with its projected token, reviewed by the Kubernetes API, and serves the AWS SDK and CLI", async () => {
        const reviewsBefore = api.reviews.length;
        const service = await start("storage-s3-api", projectedToken("storage-s3-api"));
        assert.deepEqual(api.reviews.slice(reviewsBefore), [
            { username: "system:serviceaccount:storage:storage-s3-api" },
        ]);
        const login = service.logs().find((l) => l.message === "vault login");
        assert.equal(login?.role, "storage-s3-api");
        assert.equal(login?.ttlSeconds, 3600);

        await service.s3.send(new CreateBucketCommand({ Bucket: "pod" }));
        await service.s3.send(new PutObjectCommand({ Bucket: "pod", Key: "sdk.txt", Body: "through the SDK" }));
        const got = await service.s3.send(new GetObjectCommand({ Bucket: "pod", Key: "sdk.txt" }));
        assert.equal(await got.Body!.transformToString(), "through the SDK");

        const config = path.join(work, "aws-config");
        fs.writeFileSync(config, "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n");
        const aws = (...args: string[]) =>
            execFileAsync("/usr/bin/aws", ["--endpoint-url", service.url, ...args], {
                env: {
                    PATH: process.env.PATH ?? "",
                    HOME: work,
                    AWS_CONFIG_FILE: config,
                    AWS_SHARED_CREDENTIALS_FILE: path.join(work, "no-credentials"),
                    AWS_ACCESS_KEY_ID: service.accessKey.id,
                    AWS_SECRET_ACCESS_KEY: service.accessKey.secret,
                    AWS_PAGER: "",
                },
            });
        const upload = path.join(work, "cli.bin");
        fs.writeFileSync(upload, randomBytes(300_000));
        await aws("s3", "cp", upload, "s3://pod/cli.bin");
        await aws("s3", "cp", "s3://pod/cli.bin", `${upload}.back`);
        assert.ok(fs.readFileSync(`${upload}.back`).equals(fs.readFileSync(upload)));
        assertNoSecrets(service.output());
    });

    it("renews its token, logs in again when it cannot, and no request fails meanwhile", async () => {
        // A token lives 3 s and can be renewed up to 8 s after its login: in 20 s of requests the service renews,
        // then must log in again, several times. The kubelet rotates the projected token on the way: the first
        // one expires after 7 s, so a login after that works only with the token read anew.
        await role("storage-s3-api-short", "storage-s3-api", "3s", "8s");
        const jwtFile = path.join(work, "rotating.jwt");
        projectedToken("storage-s3-api", { file: jwtFile, ttlSeconds: 7 });
        const service = await start("storage-s3-api-short", jwtFile);
        await service.s3.send(new CreateBucketCommand({ Bucket: "short" })).catch(() => undefined);

        const failures: string[] = [];
        let requests = 0;
        const until = Date.now() + 20_000;
        const worker = async (w: number) => {
            for (let i = 0; Date.now() < until; i++) {
                const Key = `w${w}/o${i}`;
                const Body = randomBytes(1000);
                try {
                    await service.s3.send(new PutObjectCommand({ Bucket: "short", Key, Body }));
                    const back = await service.s3.send(new GetObjectCommand({ Bucket: "short", Key }));
                    assert.ok(Buffer.from(await back.Body!.transformToByteArray()).equals(Body));
                    requests += 2;
                } catch (err) {
                    failures.push(`${Key}: ${(err as Error).name} ${(err as Error).message}`);
                }
                // Slow enough that each worker sends a few requests per second, each PUT a transit call.
                await new Promise((r) => setTimeout(r, 50));
            }
        };
        const rotate = setTimeout(() => projectedToken("storage-s3-api", { file: jwtFile }), 4_000);
        // Halfway, every token of the role is revoked: the next calls get 403 and the service must log in again.
        const revoke = setTimeout(() => {
            void baoApiTls(bao, "PUT", "sys/leases/revoke-prefix/auth/kubernetes/login", {}).catch(() => undefined);
        }, 12_000);
        await Promise.all([0, 1, 2, 3].map(worker));
        clearTimeout(rotate);
        clearTimeout(revoke);

        const events = service.logs().map((l) => l.message);
        const logins = events.filter((m) => m === "vault login").length;
        const renewals = events.filter((m) => m === "vault token renewed").length;
        assert.deepEqual(failures, [], `${failures.length} of ${requests + failures.length} requests failed`);
        assert.ok(requests > 200, `only ${requests} requests`);
        assert.ok(renewals >= 2, `${renewals} renewals`);
        // A login at start, one each time renewals reach the max TTL (at most every 7 s), one after the revocation.
        assert.ok(logins >= 3 && logins <= 6, `${logins} logins`);
        console.log(`      ${requests} requests in 20 s, ${logins} logins, ${renewals} renewals, 0 failed`);
        assertNoSecrets(service.output());
    });

    it("verifies Vault's certificate: with another CA file it does not start", async () => {
        const failed = await start("storage-s3-api", projectedToken("storage-s3-api"), api.caFile).then(
            () => assert.fail("the service started"),
            (err: Error) => err.message,
        );
        assert.match(failed, /cannot log in to Vault as role \\"storage-s3-api\\" at auth\/kubernetes: .*certificate/);
        assertNoSecrets(failed);
    });

    it("makes one login for many concurrent requests, and one more when they all find the token revoked", async () => {
        const agent = vaultAgent(bao.url, fs.readFileSync(bao.caFile, "utf8"));
        const jwtFile = projectedToken("storage-s3-api");
        const login = kubernetesLogin({
            address: bao.url,
            agent,
            mount: "kubernetes",
            role: "storage-s3-api",
            jwtFile,
        });
        const session = new VaultSession({ address: bao.url, agent, login });
        const reviewsBefore = api.reviews.length;
        const tokens = new Set(await Promise.all(Array.from({ length: 50 }, () => session.token())));
        assert.equal(tokens.size, 1);
        assert.equal(api.reviews.length - reviewsBefore, 1, "concurrent callers did not share one login");
        const [token] = tokens;
        assert.equal(await session.refused(token), false, "a valid token's 403 is the policy's: no new login");
        await baoApiTls(bao, "PUT", "sys/leases/revoke-prefix/auth/kubernetes/login", {});
        assert.deepEqual(
            await Promise.all(Array.from({ length: 50 }, () => session.refused(token))),
            Array(50).fill(true),
        );
        assert.equal(
            api.reviews.length - reviewsBefore,
            2,
            "callers that found the token revoked did not share one login",
        );
        assert.notEqual(await session.token(), token);
        agent.destroy();
    });

    for (const [what, roleName, account, forged, audiences] of [
        ["a role that does not exist", "storage-s3-apii", "storage-s3-api", false, ["vault"]],
        ["another service's role", "storage-kv-api", "storage-s3-api", false, ["vault"]],
        ["the token of another service account", "storage-s3-api", "storage-kv-api", false, ["vault"]],
        ["a token the Kubernetes API did not sign", "storage-s3-api", "storage-s3-api", true, ["vault"]],
        // The token every pod gets by default is for the Kubernetes API; the role wants one projected for "vault".
        ["a token for the Kubernetes API, not for Vault", "storage-s3-api", "storage-s3-api", false, undefined],
    ] as const) {
        it(`does not start with ${what}, and names the role`, async () => {
            const jwtFile = projectedToken(account, { forged, audiences: audiences && [...audiences] });
            const failed = await start(roleName, jwtFile).then(
                () => assert.fail("the service started"),
                (err: Error) => err.message,
            );
            assert.match(
                failed,
                new RegExp(`Vault refused the login as role \\\\"${roleName}\\\\" at auth/kubernetes`),
            );
            assertNoSecrets(failed);
            // A forged token passes Vault's own look at its claims; the Kubernetes API's review refuses it.
            if (forged) assert.match(api.reviews.at(-1)?.error ?? "", /cryptographic primitive/);
        });
    }
});
