// The service as it runs in its container (src/main.ts in its own process): health, readiness, metrics,
// logs, a shutdown that drains, and what a client sees while the S3 backend is down; on each backend.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { Readable } from "node:stream";
import {
    CreateBucketCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
} from "@aws-sdk/client-s3";
import {
    baoApi,
    createTransitKey,
    describeEachS3Backend,
    type OpenBaoServer,
    type S3Server,
    s3Client,
    startOpenBaoDev,
    startS3Backend,
} from "@peoples-cloud/testkit";
import { runJob, type ServiceProcess, spawnService } from "./chain";

/** The value of one series in Prometheus's text format, 0 when it is absent. */
function sample(metrics: string, series: string): number {
    const line = metrics.split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
}

/** A PUT of `body` whose bytes arrive slowly: 512 KiB every `delayMs`. */
function slowUpload(s3: ServiceProcess["s3"], Key: string, body: Buffer, delayMs: number) {
    const chunks = Array.from({ length: Math.ceil(body.length / 524_288) }, (_, i) =>
        body.subarray(i * 524_288, (i + 1) * 524_288),
    );
    const slow = Readable.from(
        (async function* () {
            for (const chunk of chunks) {
                await new Promise((r) => setTimeout(r, delayMs));
                yield chunk;
            }
        })(),
    );
    return s3.send(new PutObjectCommand({ Bucket: "family", Key, Body: slow, ContentLength: body.length }));
}

const refused = (url: string) =>
    new Promise<boolean>((resolve) => {
        const socket = net.connect(Number(new URL(url).port), "127.0.0.1");
        socket.once("connect", () => {
            socket.destroy();
            resolve(false);
        });
        socket.once("error", () => resolve(true));
    });

describeEachS3Backend("storage-s3-api as a process", function (kind) {
    this.timeout(120_000);
    let backend: S3Server;
    let bao: OpenBaoServer;
    let service: ServiceProcess;

    before(async () => {
        [backend, bao] = await Promise.all([startS3Backend(kind), startOpenBaoDev()]);
        await createTransitKey(bao, "storage-s3-api");
        service = await spawnService(backend, bao);
        await service.s3.send(new CreateBucketCommand({ Bucket: "family" }));
    });
    after(async () => {
        await service?.stop();
        await Promise.all([backend?.stop(), bao?.stop()]);
    });

    it("is live and ready when the backend and OpenBao answer", async () => {
        assert.equal((await fetch(`${service.opsUrl}/livez`)).status, 200);
        assert.equal((await fetch(`${service.opsUrl}/readyz`)).status, 200);
        assert.equal((await fetch(`${service.opsUrl}/nothing`)).status, 404);
    });

    it("counts requests, latencies, bytes and Vault calls per operation", async () => {
        const body = randomBytes(100_000);
        // Each PUT makes the next one's data key; this one makes the key that metrics/a will use.
        await service.s3.send(new PutObjectCommand({ Bucket: "family", Key: "metrics/warm", Body: body }));
        const before = await (await fetch(`${service.opsUrl}/metrics`)).text();
        await service.s3.send(new PutObjectCommand({ Bucket: "family", Key: "metrics/a", Body: body }));
        await service.s3.send(new PutObjectCommand({ Bucket: "family", Key: "metrics/b", Body: body }));
        await (
            await service.s3.send(new GetObjectCommand({ Bucket: "family", Key: "metrics/a" }))
        ).Body!.transformToByteArray();
        await assert.rejects(service.s3.send(new HeadObjectCommand({ Bucket: "family", Key: "metrics/none" })));
        const after = await (await fetch(`${service.opsUrl}/metrics`)).text();
        const delta = (series: string) => sample(after, series) - sample(before, series);
        assert.equal(delta('storage_s3_api_requests_total{operation="PutObject",status="200"}'), 2);
        assert.equal(delta('storage_s3_api_requests_total{operation="GetObject",status="200"}'), 1);
        assert.equal(delta('storage_s3_api_requests_total{operation="HeadObject",status="404"}'), 1);
        assert.equal(delta('storage_s3_api_request_duration_seconds_count{operation="PutObject"}'), 2);
        assert.equal(delta("storage_s3_api_vault_calls_total"), 2, "one Vault call per PUT, none for the GET");
        assert.ok(delta("storage_s3_api_received_bytes_total") >= 2 * body.length);
        assert.ok(delta("storage_s3_api_sent_bytes_total") >= body.length);
        assert.match(after, /# TYPE storage_s3_api_request_duration_seconds histogram/);
    });

    it("logs one JSON line per request, without keys, contents or credentials", async () => {
        const secretName = "diary/ana-private-2026.txt";
        const plaintext = "Dear diary, the safe code is 4711.";
        await service.s3.send(new PutObjectCommand({ Bucket: "family", Key: secretName, Body: plaintext }));
        await new Promise((r) => setTimeout(r, 100));
        const events = service.logs();
        const put = events.filter((e) => e.message === "request" && e.operation === "PutObject");
        assert.ok(put.length >= 1);
        assert.equal(put.at(-1)!.status, 200);
        assert.equal(put.at(-1)!.bucket, "family");
        assert.equal(typeof put.at(-1)!.durationSeconds, "number");
        const output = service.output();
        for (const secret of [
            secretName,
            "ana-private",
            plaintext,
            service.accessKey.secret,
            bao.rootToken!,
            backend.secretAccessKey,
        ]) {
            assert.ok(!output.includes(secret), "the log holds something it must not");
        }
    });

    it("answers 503 while the backend is down, is not ready, and leaves nothing partial behind", async () => {
        // Settled at once: the upload fails while the backend is still being stopped.
        const upload = slowUpload(service.s3, "cut/upload.bin", randomBytes(8 * 1024 * 1024), 100).then(
            () => undefined,
            (err: Error & { $metadata?: { httpStatusCode?: number } }) => err,
        );
        await new Promise((r) => setTimeout(r, 500));
        // A crash: a graceful stop lets SeaweedFS finish the upload first.
        await backend.halt("SIGKILL");
        const failed = await upload;
        assert.equal(failed?.$metadata?.httpStatusCode, 503, "the cut upload did not answer 503");
        assert.equal(failed?.name, "ServiceUnavailable");
        await assert.rejects(
            service.s3.send(new GetObjectCommand({ Bucket: "family", Key: "metrics/a" })),
            (err: { $metadata?: { httpStatusCode?: number }; name?: string }) =>
                err.$metadata?.httpStatusCode === 503 && err.name === "ServiceUnavailable",
        );
        await new Promise((r) => setTimeout(r, 2_100)); // readiness is cached for two seconds
        assert.equal((await fetch(`${service.opsUrl}/readyz`)).status, 503);

        await backend.restart();
        const listed = await service.s3.send(new ListObjectsV2Command({ Bucket: "family", Prefix: "cut/" }));
        assert.equal(listed.KeyCount, 0, "a partial object is visible");
        await assert.rejects(
            service.s3.send(new HeadObjectCommand({ Bucket: "family", Key: "cut/upload.bin" })),
            (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode === 404,
        );
        const got = await service.s3.send(new GetObjectCommand({ Bucket: "family", Key: "metrics/a" }));
        assert.equal((await got.Body!.transformToByteArray()).length, 100_000);
        await new Promise((r) => setTimeout(r, 2_100));
        assert.equal((await fetch(`${service.opsUrl}/readyz`)).status, 200);
        // The cut uploads failed inside the S3 SDK: still nothing but the service's JSON lines on stdout and stderr.
        for (const line of service
            .output()
            .split("\n")
            .filter((l) => l.trim())) {
            assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`);
        }
    });

    it("does not start with a transit key made without derived=true, which would ignore each object's context", async () => {
        await baoApi(bao, "POST", "transit/keys/not-derived", { type: "aes256-gcm96" });
        const failed = await spawnService(backend, bao, { env: { TRANSIT_KEY: "not-derived" } }).then(
            (started) => started.stop().then(() => assert.fail("the service started")),
            (err: Error) => err.message,
        );
        assert.match(failed, /transit key transit\/keys\/not-derived was not created with derived=true/);
    });

    it("runs the rewrap job after a transit key rotation: every data key on the newest version, content kept", async () => {
        const bodies = [randomBytes(1000), randomBytes(70_000)];
        for (const [i, Body] of bodies.entries()) {
            await service.s3.send(new PutObjectCommand({ Bucket: "family", Key: `rotate/${i}`, Body }));
        }
        await baoApi(bao, "POST", "transit/keys/storage-s3-api/rotate");
        const job = await runJob("rewrap.ts", backend, bao, { REWRAP_BUCKETS: "family" });
        assert.equal(job.code, 0);
        const done = job.logs.find((l) => l.message === "rewrapped");
        assert.equal(done?.bucket, "family");
        assert.ok((done?.rewrapped as number) >= bodies.length, JSON.stringify(done));
        const direct = s3Client(backend.url, backend.accessKeyId, backend.secretAccessKey);
        for (const [i, body] of bodies.entries()) {
            const atBackend = await direct.send(new HeadObjectCommand({ Bucket: "family", Key: `rotate/${i}` }));
            assert.match(atBackend.Metadata?.["pce-k"] ?? "", /^vault:v2:/);
            const got = await service.s3.send(new GetObjectCommand({ Bucket: "family", Key: `rotate/${i}` }));
            assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
        }
    });

    it("drains on SIGTERM: the request in flight completes, new connections are refused, exit 0", async () => {
        const body = randomBytes(4 * 1024 * 1024);
        const upload = slowUpload(service.s3, "drain/in-flight.bin", body, 150);
        await new Promise((r) => setTimeout(r, 400));
        service.child.kill("SIGTERM");
        await new Promise((r) => setTimeout(r, 200));
        assert.equal((await fetch(`${service.opsUrl}/readyz`)).status, 503, "still ready while draining");
        assert.ok(await refused(service.url), "new connections are still taken while draining");
        const put = await upload;
        assert.match(put.ETag ?? "", /^"/);
        assert.equal(await service.stop(), 0);

        const again = await spawnService(backend, bao);
        try {
            const got = await again.s3.send(new GetObjectCommand({ Bucket: "family", Key: "drain/in-flight.bin" }));
            assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
        } finally {
            await again.stop();
        }
    });
});
