// The OpenBao and MinIO built by scripts/tools.sh run and answer their APIs, for the layers' and services' tests.
import * as assert from "node:assert/strict";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
    baoApi,
    type MinioServer,
    type OpenBaoServer,
    startMinio,
    startOpenBaoDev,
    startOpenBaoRaft,
    s3Client,
} from "@peoples-cloud/testkit";

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

describe("MinIO", () => {
    let minio: MinioServer;
    after(async () => minio?.stop());

    it("stores and returns an object over the S3 API", async () => {
        minio = await startMinio();
        const client = (secretAccessKey: string) => s3Client(minio.url, minio.accessKeyId, secretAccessKey);
        const s3 = client(minio.secretAccessKey);
        await s3.send(new CreateBucketCommand({ Bucket: "family" }));
        await s3.send(new PutObjectCommand({ Bucket: "family", Key: "hello.txt", Body: "hello" }));
        const got = await s3.send(new GetObjectCommand({ Bucket: "family", Key: "hello.txt" }));
        assert.equal(await got.Body?.transformToString(), "hello");
        await assert.rejects(
            client("wrong").send(new GetObjectCommand({ Bucket: "family", Key: "hello.txt" })),
            /signature/i,
        );
    });
});
