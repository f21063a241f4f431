// rclone, a backup and sync client built on AWS's Go SDK, against the service as a family's backups use it:
// copy a folder up (with a multipart upload), check it byte for byte, list it every way rclone can, bring it
// back, and sync a deletion; with names plain and hidden.
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { s3Backends, toolsBinDir } from "@peoples-cloud/testkit";
import { type Chain, type RunningService, startChain } from "./chain";
import { familyFiles, filesIn, writeFolder } from "./folder";

const execFileAsync = promisify(execFile);

for (const privacy of [false, true])
    describe(`rclone against the service${privacy ? ", names hidden" : ""}`, function () {
        this.timeout(300_000);
        let chain: Chain;
        let service: RunningService;
        let rclone: string;
        let work: string;
        const home = () => path.join(work, "home");
        /** The S3 operations rclone's requests were, as the service's metrics name them. */
        const operations = new Set<string>();

        const files = familyFiles();

        before(async () => {
            rclone = path.join(toolsBinDir("clients"), "rclone");
            // The client and the service are what is tested: on one backend, the first listed.
            chain = await startChain(s3Backends()[0]);
            service = await chain.startService({
                observe: (event) => operations.add(event.operation),
                ...(privacy ? { nameKey: randomBytes(32) } : {}),
            });
            work = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-rclone-"));
            writeFolder(home(), files);
        });
        after(async () => {
            await chain?.stop();
            if (work) fs.rmSync(work, { recursive: true, force: true });
        });

        /** Runs rclone with the remote "family" set up in its environment (the secret never on a command line). */
        async function run(...args: string[]): Promise<string> {
            const env = {
                PATH: process.env.PATH ?? "",
                HOME: work,
                RCLONE_CONFIG: path.join(work, "rclone.conf"),
                RCLONE_CONFIG_FAMILY_TYPE: "s3",
                RCLONE_CONFIG_FAMILY_PROVIDER: "Other",
                RCLONE_CONFIG_FAMILY_ENDPOINT: service.url,
                RCLONE_CONFIG_FAMILY_REGION: "us-east-1",
                RCLONE_CONFIG_FAMILY_FORCE_PATH_STYLE: "true",
                RCLONE_CONFIG_FAMILY_ACCESS_KEY_ID: service.accessKey.id,
                RCLONE_CONFIG_FAMILY_SECRET_ACCESS_KEY: service.accessKey.secret,
            };
            try {
                const { stdout } = await execFileAsync(rclone, [...args, "--retries", "1"], { env });
                return stdout;
            } catch (err) {
                const { stderr } = err as { stderr?: string };
                throw new Error(`rclone ${args.join(" ")} failed: ${stderr?.slice(-2000)}`, { cause: err });
            }
        }

        it("copies a folder up, multipart included, and checks every byte", async () => {
            await run("mkdir", "family:backups");
            await run("copy", home(), "family:backups/home", "--s3-upload-cutoff", "5Mi", "--s3-chunk-size", "5Mi");
            await run("check", home(), "family:backups/home", "--download");
            for (const operation of ["CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "PutObject"]) {
                assert.ok(operations.has(operation), `rclone's copy made no ${operation}`);
            }
        });

        it("lists it as it is, with either listing version, names url-encoded or not, page by page", async () => {
            for (const flags of [
                [],
                ["--s3-list-version", "1", "--s3-list-url-encode", "true", "--s3-list-chunk", "2"],
                ["--s3-list-version", "2", "--s3-list-url-encode", "true", "--s3-list-chunk", "2"],
                ["--s3-list-version", "2", "--s3-list-url-encode", "false"],
            ]) {
                const listed = (await run("lsf", "-R", "--files-only", "family:backups/home", ...flags)).split("\n");
                assert.deepEqual(listed.filter(Boolean).sort(), Object.keys(files).sort(), flags.join(" "));
            }
            assert.ok(operations.has("ListObjects") && operations.has("ListObjectsV2"), [...operations].join(" "));
        });

        it("brings it back byte for byte, and syncs a deletion", async () => {
            const restored = path.join(work, "restored");
            await run("copy", "family:backups/home", restored);
            assert.deepEqual(filesIn(restored), Object.keys(files).sort());
            for (const [name, content] of Object.entries(files)) {
                assert.ok(fs.readFileSync(path.join(restored, name)).equals(content), name);
            }
            fs.rmSync(path.join(home(), "notes.txt"));
            await run("sync", home(), "family:backups/home");
            const listed = (await run("lsf", "-R", "--files-only", "family:backups/home")).split("\n").filter(Boolean);
            assert.deepEqual(
                listed.sort(),
                Object.keys(files)
                    .filter((name) => name !== "notes.txt")
                    .sort(),
            );
        });

        it("copies and moves on the server, a multipart object and one with a space in its name", async () => {
            await run("copyto", "family:backups/home/photos/2026/beach day.jpg", "family:archive/beach day.jpg");
            await run("moveto", "family:backups/home/docs/big.bin", "family:archive/big.bin");
            assert.ok(operations.has("CopyObject"), [...operations].join(" "));
            const bigGone = await run("lsf", "family:backups/home/docs");
            assert.ok(!bigGone.includes("big.bin"), bigGone);
            for (const [name, original] of [
                ["beach day.jpg", "photos/2026/beach day.jpg"],
                ["big.bin", "docs/big.bin"],
            ]) {
                const local = path.join(work, "archived", name);
                await run("copyto", `family:archive/${name}`, local);
                assert.ok(fs.readFileSync(local).equals(files[original]), name);
            }
        });
    });
