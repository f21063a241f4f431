// storage-s3-api and storage-kv-api started as their pods start: the environment and the files come from the
// pod specs the manifests are made of (components/apps/pods.ts, its mount paths moved under a temporary folder
// by `processEnv`), the program is the image's /app (testkit's `assembleImage`: production dependencies only)
// run as its entry point, and each mounted Secret holds what the apps layer writes to Vault KV, read from a real
// OpenBao as the Vault Secrets Operator reads it (logged in as the service). storage-s3-api logs in to OpenBao
// with its projected token (Kubernetes auth, the Vault layer's role and policy, reviewed by testkit's stand-in
// TokenReview API), encrypts with its derived transit key on SeaweedFS (the layer's default backend), and serves
// the AWS CLI with a member's key; storage-kv-api's init container makes its bucket through it, and a document
// goes in and comes back; the backend sees no object's name. Neither process prints a secret. (Tokens expiring under load: services/storage-s3-api/test/vault-login.test.ts.)
import * as assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import {
    assembleImage,
    baoApiTls,
    freePort,
    type KubernetesApi,
    s3Client,
    type S3Server,
    type ServiceImage,
    startKubernetesApi,
    startSeaweedfs,
    startOpenBaoDevTls,
    type TlsOpenBaoServer,
    waitUntil,
} from "@peoples-cloud/testkit";
import {
    KV_BUCKET,
    kvApiPod,
    NAMESPACE,
    type PodSpec,
    processEnv,
    s3ApiPod,
    SECRETS,
    type Service,
} from "../../components/apps/pods";
import { appSecretFiles } from "../../components/apps/secrets";
import { kubernetesAuthRole, STORAGE_SERVICES, TRANSIT_KEY } from "../../components/vault/config";
import { appPolicy, DEFAULT_MOUNTS } from "../../components/vault/policies";

const execFileAsync = promisify(execFile);
/** What a Vault token or a JWT looks like, wherever it would be printed. */
const TOKEN_SHAPES = [/\b(hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}/, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/];

/** A container of a pod, running on loopback. */
interface Running {
    name: string;
    child: ChildProcess;
    /** Each containerPort, as the port it listens on here. */
    ports: Record<number, number>;
    output(): string;
    exited: Promise<number | null>;
}

describe("the storage services started as their pods start, from their images' files", function () {
    this.timeout(10 * 60_000);
    let work: string;
    /** The backend the apps layer defaults to: SeaweedFS. */
    let backend: S3Server;
    let bao: TlsOpenBaoServer;
    let api: KubernetesApi;
    const images: Partial<Record<Service, ServiceImage>> = {};
    const running: Running[] = [];
    const jwts: string[] = [];
    /** Every secret the processes hold, none of which may appear in what they print. */
    const secrets: string[] = [];

    // The keys' values, made here as RandomToken makes them under the engine (hex), and the files of each KV
    // secret in the apps layer's own shapes (components/apps/secrets.ts; apps-secrets.test.ts runs the layer).
    const hex = (bytes: number) => randomBytes(bytes).toString("hex");
    const member = { accessKeyId: "ana", secretAccessKey: hex(20), kvToken: hex(32) };
    const kvApiS3Secret = hex(20);
    const [etagKey, nameKey, kvApiSecretKey] = [hex(32), hex(32), hex(32)];
    /** Each Kubernetes Secret the operator syncs (components/apps/layer.ts), from its KV secret. */
    const synced: { secretName: string; service: Service; vaultPath: string; files: () => Record<string, string> }[] = [
        {
            secretName: SECRETS.s3Keys,
            service: "storage-s3-api",
            vaultPath: "keys",
            files: () =>
                appSecretFiles.s3ApiKeys(
                    { [member.accessKeyId]: member.secretAccessKey },
                    kvApiS3Secret,
                    etagKey,
                    nameKey,
                ),
        },
        {
            secretName: SECRETS.s3Backend,
            service: "storage-s3-api",
            vaultPath: "backend",
            files: () =>
                appSecretFiles.s3ApiBackend({
                    accessKeyId: backend.accessKeyId,
                    secretAccessKey: backend.secretAccessKey,
                }),
        },
        {
            secretName: SECRETS.kvKeys,
            service: "storage-kv-api",
            vaultPath: "keys",
            files: () =>
                appSecretFiles.kvApiKeys({ [member.accessKeyId]: member.kvToken }, kvApiS3Secret, kvApiSecretKey),
        },
    ];
    /** The Kubernetes Secrets in the namespace, as the operator and cert-manager left them. */
    const kubeSecrets: Record<string, Record<string, string>> = {};

    /** A token of `serviceAccount` as the kubelet projects it (audience, lifetime). */
    function projectedToken(serviceAccount: string, audience: string, seconds: number): string {
        const jwt = api.serviceAccountToken({
            namespace: NAMESPACE,
            serviceAccount,
            audiences: [audience],
            ttlSeconds: seconds,
        });
        jwts.push(jwt);
        return jwt;
    }

    /** The Vault Secrets Operator's sync: logged in as the service (its VaultAuth), it reads the KV secret. */
    async function syncSecret(s: (typeof synced)[number]): Promise<Record<string, string>> {
        const anonymous = { ...bao, rootToken: undefined };
        const login = (await baoApiTls(anonymous, "POST", "auth/kubernetes/login", {
            role: s.service,
            jwt: projectedToken(s.service, "vault", 600),
        })) as { auth: { client_token: string } };
        const token = login.auth.client_token;
        secrets.push(token);
        const kvPath = `${DEFAULT_MOUNTS.kv}/data/apps/${s.service}/${s.vaultPath}`;
        const read = (await baoApiTls({ ...bao, rootToken: token }, "GET", kvPath)) as {
            data: { data: Record<string, string> };
        };
        return read.data.data;
    }

    /**
     * The kubelet's part: each volume of the pod under `root/<volume>` — a Secret's keys as files, a projected
     * service-account token and Secret items at their paths, an empty folder.
     */
    function mountVolumes(pod: PodSpec, root: string) {
        for (const volume of pod.volumes) {
            const dir = path.join(root, volume.name);
            fs.mkdirSync(dir, { recursive: true });
            const write = (file: string, value: string, mode = 0o440) =>
                fs.writeFileSync(path.join(dir, file), value, { mode });
            if ("secret" in volume) {
                const data = kubeSecrets[volume.secret.secretName];
                assert.ok(data, `no Secret ${volume.secret.secretName}`);
                for (const [key, value] of Object.entries(data)) write(key, value, volume.secret.defaultMode);
            } else if ("projected" in volume) {
                for (const source of volume.projected.sources) {
                    if ("serviceAccountToken" in source) {
                        const { audience, expirationSeconds, path: file } = source.serviceAccountToken;
                        write(file, projectedToken(pod.serviceAccountName, audience, expirationSeconds));
                    } else {
                        const data = kubeSecrets[source.secret.name];
                        assert.ok(data, `no Secret ${source.secret.name}`);
                        for (const item of source.secret.items) write(item.path, data[item.key]);
                    }
                }
            }
        }
    }

    /**
     * A container of the pod, from the image's /app: its command (the image's entry point `node main.js` when it
     * has none), its environment with the mounts under `root` and each container port on a free loopback port.
     */
    async function startContainer(pod: PodSpec, name: string, image: ServiceImage, root: string): Promise<Running> {
        const container = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === name)!;
        const ports: Record<number, number> = {};
        for (const p of container.ports ?? []) ports[p.containerPort] = await freePort();
        const env = Object.fromEntries(
            Object.entries(processEnv(pod, name, root)).map(([key, value]) => {
                const listen = /^0\.0\.0\.0:(\d+)$/.exec(value);
                return [key, listen && ports[Number(listen[1])] ? `127.0.0.1:${ports[Number(listen[1])]}` : value];
            }),
        );
        const [command, ...args] = container.command ?? ["node", "main.js"];
        assert.equal(command, "node");
        const child = spawn(process.execPath, [...args, ...(container.args ?? [])], {
            cwd: image.dir,
            env: { PATH: process.env.PATH ?? "", ...env },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
        const run = { name, child, ports, output: () => output, exited };
        running.push(run);
        return run;
    }

    /** Ready as the kubelet sees it: the container's readiness probe answers 200. */
    async function ready(pod: PodSpec, run: Running) {
        const probe = pod.containers.find((c) => c.name === run.name)!.readinessProbe!.httpGet;
        const url = `http://127.0.0.1:${run.ports[probe.port]}${probe.path}`;
        await waitUntil(run.name, async () => (await fetch(url)).status === 200, run.child, 60_000).catch((err) => {
            throw new Error(`${(err as Error).message}: ${run.output()}`);
        });
    }

    /** The object keys in a bucket, as the backend lists them. */
    async function backendKeys(bucket: string): Promise<string[]> {
        const client = s3Client(backend.url, backend.accessKeyId, backend.secretAccessKey);
        const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
        client.destroy();
        return (listed.Contents ?? []).map((o) => o.Key ?? "");
    }

    function assertNoSecrets(what: string, output: string) {
        for (const shape of TOKEN_SHAPES) assert.doesNotMatch(output, shape, `${what}'s output holds a token or JWT`);
        for (const secret of secrets) assert.ok(!output.includes(secret), `${what}'s output holds a secret`);
        for (const jwt of jwts) assert.ok(!output.includes(jwt.split(".")[2]), `${what}'s output holds a JWT`);
    }

    let s3Pod: PodSpec;
    let kvPod: PodSpec;
    let s3Api: Running;
    let kvApi: Running;

    before(async () => {
        work = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-apps-pods-"));
        [backend, bao, api] = await Promise.all([startSeaweedfs(), startOpenBaoDevTls(), startKubernetesApi()]);
        images["storage-s3-api"] = assembleImage("storage-s3-api");
        images["storage-kv-api"] = assembleImage("storage-kv-api");
        secrets.push(
            bao.rootToken!,
            member.secretAccessKey,
            member.kvToken,
            kvApiS3Secret,
            backend.secretAccessKey,
            ...[etagKey, nameKey, kvApiSecretKey].flatMap((k) => [k, Buffer.from(k, "hex").toString("base64")]),
        );

        // Vault as the Vault layer configures it (components/vault/config.ts), for the storage services: a
        // derived transit key each, its policy, the Kubernetes auth method reviewed by the stand-in, its role.
        const write = (apiPath: string, body: unknown) => baoApiTls(bao, "POST", apiPath, body);
        await write(`sys/mounts/${DEFAULT_MOUNTS.transit}`, { type: "transit" });
        await write("sys/auth/kubernetes", { type: "kubernetes" });
        await write("auth/kubernetes/config", {
            kubernetes_host: api.url,
            kubernetes_ca_cert: api.caCert,
            token_reviewer_jwt: api.reviewerToken,
            disable_local_ca_jwt: true,
        });
        for (const app of STORAGE_SERVICES) {
            await write(`${DEFAULT_MOUNTS.transit}/keys/${app.name}`, TRANSIT_KEY);
            await baoApiTls(bao, "PUT", `sys/policies/acl/${app.name}`, { policy: appPolicy(app.name) });
            await write(`auth/kubernetes/role/${app.name}`, kubernetesAuthRole(app));
        }
        // The apps layer's KV writes (a dev server has KV v2 at `secret/`), then the operator's sync.
        for (const s of synced) {
            await write(`${DEFAULT_MOUNTS.kv}/data/apps/${s.service}/${s.vaultPath}`, { data: s.files() });
        }
        for (const s of synced) kubeSecrets[s.secretName] = await syncSecret(s);
        // cert-manager's certificate in the namespace: the CA that verifies Vault's.
        kubeSecrets[SECRETS.vaultCa] = { "ca.crt": fs.readFileSync(bao.caFile, "utf8") };
    });

    after(async () => {
        for (const run of running) if (run.child.exitCode === null) run.child.kill("SIGKILL");
        await Promise.all(running.map((r) => r.exited));
        for (const image of Object.values(images)) image.remove();
        await Promise.all([backend?.stop(), bao?.stop(), api?.stop()]);
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("storage-s3-api logs in as its service account and serves the AWS CLI with a member's key", async () => {
        s3Pod = s3ApiPod({
            image: "storage-s3-api",
            backendEndpoint: backend.url,
            backendRegion: "us-east-1",
            vaultAddress: bao.url,
            vaultAuthMount: "kubernetes",
            vaultAuthRole: "storage-s3-api",
            transitKey: "storage-s3-api",
        });
        const root = path.join(work, "storage-s3-api");
        mountVolumes(s3Pod, root);
        const reviews = api.reviews.length;
        const started = Date.now();
        s3Api = await startContainer(s3Pod, "storage-s3-api", images["storage-s3-api"]!, root);
        await ready(s3Pod, s3Api);
        console.log(`      storage-s3-api ready in ${Date.now() - started} ms`);
        assert.deepEqual(api.reviews.slice(reviews), [{ username: "system:serviceaccount:storage:storage-s3-api" }]);
        assert.match(s3Api.output(), /"message":"vault login"/);

        const endpoint = `http://127.0.0.1:${s3Api.ports[s3Pod.containers[0].ports![0].containerPort]}`;
        const config = path.join(work, "aws-config");
        fs.writeFileSync(config, "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n");
        const aws = (...args: string[]) =>
            execFileAsync("/usr/bin/aws", ["--endpoint-url", endpoint, ...args], {
                env: {
                    PATH: process.env.PATH ?? "",
                    HOME: work,
                    AWS_CONFIG_FILE: config,
                    AWS_SHARED_CREDENTIALS_FILE: path.join(work, "no-credentials"),
                    AWS_ACCESS_KEY_ID: member.accessKeyId,
                    AWS_SECRET_ACCESS_KEY: member.secretAccessKey,
                    AWS_PAGER: "",
                },
            });
        const upload = path.join(work, "photo.bin");
        fs.writeFileSync(upload, randomBytes(300_000));
        const t = Date.now();
        await aws("s3", "mb", "s3://family");
        await aws("s3", "cp", upload, "s3://family/holidays/photo.bin");
        await aws("s3", "cp", "s3://family/holidays/photo.bin", `${upload}.back`);
        const listing = (await aws("s3", "ls", "s3://family/holidays/")).stdout;
        console.log(`      AWS CLI mb, put, get, list in ${Date.now() - t} ms`);
        assert.ok(fs.readFileSync(`${upload}.back`).equals(fs.readFileSync(upload)));
        assert.match(listing, /300000 photo\.bin/);
        // The backend does not see the object's name (NAME_KEY_FILE).
        const stored = await backendKeys("family");
        assert.equal(stored.length, 1);
        assert.ok(!stored.some((k) => k.includes("holidays") || k.includes("photo")), "the backend sees a name");
    });

    it("storage-kv-api makes its bucket, starts, and stores and reads a document through storage-s3-api", async () => {
        assert.ok(s3Api?.child.exitCode === null, "storage-s3-api is not running");
        const s3Port = s3Api.ports[s3Pod.containers[0].ports![0].containerPort];
        kvPod = kvApiPod({ image: "storage-kv-api", s3Endpoint: `http://127.0.0.1:${s3Port}` });
        const root = path.join(work, "storage-kv-api");
        mountVolumes(kvPod, root);
        const started = Date.now();
        for (const init of kvPod.initContainers ?? []) {
            const run = await startContainer(kvPod, init.name, images["storage-kv-api"]!, root);
            let timer: NodeJS.Timeout | undefined;
            const timeout = new Promise((resolve) => (timer = setTimeout(resolve, 60_000, "still running after 60 s")));
            const code = await Promise.race([run.exited, timeout]);
            clearTimeout(timer);
            assert.equal(code, 0, `${init.name}: ${run.output()}`);
        }
        kvApi = await startContainer(kvPod, "storage-kv-api", images["storage-kv-api"]!, root);
        await ready(kvPod, kvApi);
        console.log(`      storage-kv-api (with its init container) ready in ${Date.now() - started} ms`);

        const url = `http://127.0.0.1:${kvApi.ports[kvPod.containers[0].ports![0].containerPort]}`;
        const call = async (method: string, route: string, body?: unknown) => {
            const res = await fetch(`${url}${route}`, {
                method,
                headers: { Authorization: `Bearer ${member.kvToken}`, "Content-Type": "application/json" },
                body: body === undefined ? undefined : JSON.stringify(body),
            });
            return { status: res.status, body: (await res.json()) as unknown };
        };
        const t = Date.now();
        assert.equal((await call("PUT", "/v1/collections/recipes", { indexes: [] })).status, 201);
        const doc = { title: "Grandma's soup", serves: 4 };
        assert.equal((await call("PUT", "/v1/collections/recipes/docs/soup", doc)).status, 201);
        const got = await call("GET", "/v1/collections/recipes/docs/soup");
        console.log(`      collection, document put and get in ${Date.now() - t} ms`);
        assert.equal(got.status, 200);
        assert.deepEqual(got.body, doc);

        // Its bucket is on the backend, which does not see the collection's and the document's names.
        const stored = await backendKeys(KV_BUCKET);
        assert.ok(stored.length > 0, "storage-kv-api's bucket is empty on the backend");
        assert.ok(!stored.some((k) => k.includes("recipes") || k.includes("soup")), "the backend sees a name");
    });

    it("prints no secret: no access key, JWT, Vault token, ETag, name or secret key", () => {
        assert.deepEqual(
            running.map((r) => r.name),
            ["storage-s3-api", "create-bucket", "storage-kv-api"],
        );
        for (const run of running) {
            assertNoSecrets(run.name, run.output());
            console.log(`      ${run.name}: ${run.output().split("\n").filter(Boolean).length} lines, no secret`);
        }
        // They did log: the login, and a line per request.
        assert.match(s3Api.output(), /"message":"vault login"/);
        assert.match(kvApi.output(), /PUT \/v1\/collections\/\{collection\}\/docs\/\{key\}/);
    });
});
