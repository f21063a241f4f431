// Conditional writes under contention, which storage-kv-api's document store is built on: of 32 concurrent
// writers of one new key with `If-None-Match: *`, or of one version with `If-Match`, exactly one wins and every
// other gets 412, and what is stored is the winner's. Straight to each backend, and through storage-s3-api.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { describeEachS3Backend, s3Client } from "@peoples-cloud/testkit";
import { type Chain, type RunningService, startChain } from "./chain";

const WRITERS = 32;
/** Rounds of each race: one lucky ordering must not pass for atomicity. */
const ROUNDS = 3;

interface Outcome {
    status: number;
    etag?: string;
}

/** Each writer on its own client (its own connection), all sent at once; the HTTP status each got. */
async function race(clients: S3Client[], write: (s3: S3Client, i: number) => Promise<{ ETag?: string }>) {
    return Promise.all(
        clients.map(async (s3, i): Promise<Outcome> => {
            try {
                return { status: 200, etag: (await write(s3, i)).ETag };
            } catch (err) {
                const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
                if (status === undefined) throw err;
                return { status };
            }
        }),
    );
}

/** Exactly one 200, every other writer 412; the index of the winner. */
function oneWinner(outcomes: Outcome[]): number {
    const statuses = new Map<number, number>();
    for (const o of outcomes) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1);
    assert.deepEqual(
        Object.fromEntries(statuses),
        { 200: 1, 412: WRITERS - 1 },
        `statuses of ${WRITERS} writers (status: count)`,
    );
    return outcomes.findIndex((o) => o.status === 200);
}

const WAYS = ["straight to the backend", "through storage-s3-api"] as const;

describeEachS3Backend("conditional writes under contention", function (kind) {
    this.timeout(120_000);
    let chain: Chain;
    let service: RunningService;
    /** Each way's writers, each its own client (its own connections). */
    let writers: Record<(typeof WAYS)[number], S3Client[]>;

    before(async () => {
        chain = await startChain(kind);
        service = await chain.startService();
        await service.s3.send(new CreateBucketCommand({ Bucket: "race" }));
        const { backend } = chain;
        const many = (make: () => S3Client) => Array.from({ length: WRITERS }, make);
        writers = {
            "straight to the backend": many(() => s3Client(backend.url, backend.accessKeyId, backend.secretAccessKey)),
            "through storage-s3-api": many(() => s3Client(service.url, service.accessKey.id, service.accessKey.secret)),
        };
    });
    after(async () => {
        for (const c of Object.values(writers ?? {}).flat()) c.destroy();
        await chain?.stop();
    });

    const read = async (s3: S3Client, Key: string) => {
        const got = await s3.send(new GetObjectCommand({ Bucket: "race", Key }));
        return { body: await got.Body!.transformToString(), etag: got.ETag };
    };

    for (const way of WAYS) {
        it(`${way}: ${WRITERS} concurrent If-None-Match: * PUTs of one new key, one wins, the others get 412`, async () => {
            const clients = writers[way];
            for (let round = 0; round < ROUNDS; round++) {
                const Key = `claim/${round}-${randomBytes(4).toString("hex")}`;
                const outcomes = await race(clients, (s3, i) =>
                    s3.send(new PutObjectCommand({ Bucket: "race", Key, Body: `writer ${i}`, IfNoneMatch: "*" })),
                );
                const winner = oneWinner(outcomes);
                assert.deepEqual(await read(clients[0], Key), {
                    body: `writer ${winner}`,
                    etag: outcomes[winner].etag,
                });
            }
        });

        it(`${way}: ${WRITERS} concurrent If-Match updates of one version, one wins, the others get 412`, async () => {
            const clients = writers[way];
            for (let round = 0; round < ROUNDS; round++) {
                const Key = `update/${round}-${randomBytes(4).toString("hex")}`;
                const first = await clients[0].send(new PutObjectCommand({ Bucket: "race", Key, Body: "v1" }));
                const outcomes = await race(clients, (s3, i) =>
                    s3.send(new PutObjectCommand({ Bucket: "race", Key, Body: `v2 by ${i}`, IfMatch: first.ETag })),
                );
                const winner = oneWinner(outcomes);
                assert.deepEqual(await read(clients[0], Key), { body: `v2 by ${winner}`, etag: outcomes[winner].etag });
            }
        });
    }
});
