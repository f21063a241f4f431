// The OpenBao, MinIO and SeaweedFS built by scripts/tools.sh run and answer their APIs, for the layers' and
// services' tests, on ports that no client's connection takes from under them.
import * as assert from "node:assert/strict";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import * as fs from "node:fs";
import {
    baoApi,
    freePort,
    type OpenBaoServer,
    S3_BACKENDS,
    type S3Server,
    startOpenBaoDev,
    startOpenBaoRaft,
    startS3Backend,
    s3Client,
} from "@peoples-cloud/testkit";

describe("ports for the servers", () => {
    it("are free, and below the range the kernel gives outgoing connections' ports from", async () => {
        const [low] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
        const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
        for (const port of ports) assert.ok(port >= 1024 && port < low, `${port} is in the ephemeral range`);
    });
});

describe("OpenBao", () => {
    let bao: OpenBaoServer;
    afterEach(async () => bao?.stop());

    it("a dev server encrypts and decrypts with transit", async () => {
        bao = await startOpenBaoDev();
        type Data = { data: Record<string, string> };
        await baoApi(bao, "POST", "sys/mounts/transit", { type: "transit" });
        await baoApi(bao, "POST", "transit/keys/test", { type: "aes256-gcm96" });
        const plaintext = Buffer.from("a family photo").toString("base64");
        const { data: sealed } = (await baoApi(bao, "POST", "transit/encrypt/test", { plaintext })) as Data;
        assert.match(sealed.ciphertext, /^vault:v1:/);
        const { data: opened } = (await baoApi(bao, "POST", "transit/decrypt/test", sealed)) as Data;
        assert.equal(opened.plaintext, plaintext);
    });

    it("a raft server starts uninitialised and sealed", async () => {
        bao = await startOpenBaoRaft();
        const status = (await (await fetch(`${bao.url}/v1/sys/seal-status`)).json()) as Record<string, unknown>;
        assert.equal(status.initialized, false);
        assert.equal(status.sealed, true);
    });
});

for (const backend of S3_BACKENDS) {
    describe(backend, () => {
        let server: S3Server;
        after(async () => server?.stop());

        it("stores and returns an object over the S3 API, refuses a wrong secret, logs no secret", async () => {
            server = await startS3Backend(backend);
            const client = (secretAccessKey: string) => s3Client(server.url, server.accessKeyId, secretAccessKey);
            const s3 = client(server.secretAccessKey);
            await s3.send(new CreateBucketCommand({ Bucket: "family" }));
            await s3.send(new PutObjectCommand({ Bucket: "family", Key: "hello.txt", Body: "hello" }));
            const got = await s3.send(new GetObjectCommand({ Bucket: "family", Key: "hello.txt" }));
            assert.equal(await got.Body?.transformToString(), "hello");
            await assert.rejects(
                client("wrong").send(new GetObjectCommand({ Bucket: "family", Key: "hello.txt" })),
                /signature/i,
            );
            assert.ok(!server.log().includes(server.secretAccessKey), "the secret key is in the server's log");
        });

        it("keeps its data across a halt and a restart, and removes its folder on stop", async () => {
            const s3 = s3Client(server.url, server.accessKeyId, server.secretAccessKey);
            await server.halt();
            await assert.rejects(s3.send(new GetObjectCommand({ Bucket: "family", Key: "hello.txt" })));
            await server.restart();
            const got = await s3.send(new GetObjectCommand({ Bucket: "family", Key: "hello.txt" }));
            assert.equal(await got.Body?.transformToString(), "hello");
            await server.stop();
            assert.equal(fs.existsSync(server.dir), false, "the server's folder is left");
        });
    });
}
