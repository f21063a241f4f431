// s3cmd (Debian's 2.3.0), which takes a single PUT's ETag for the MD5 of what it sent and re-sends when they
// differ: small files and a multipart upload go up with no retry and no warning in its --debug output, come
// back byte for byte, and a second sync finds nothing to send (the listing's ETags are the files' MD5s).
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { s3Backends } from "@peoples-cloud/testkit";
import { type Chain, type RunningService, startChain } from "./chain";
import { filesIn, writeFolder } from "./folder";

const execFileAsync = promisify(execFile);

/** Thirty small files, as the ones s3cmd re-sent one time in three, and one for a multipart upload. */
function files(): Record<string, Buffer> {
    const out: Record<string, Buffer> = {};
    for (let i = 0; i < 30; i++) out[`small/${i}.bin`] = randomBytes(1 + ((i * 7919) % 100_000));
    out["big/twelve.bin"] = randomBytes(12 * 1024 * 1024 + 5);
    return out;
}

/** Lines of s3cmd's output that tell of a retry, a re-send or a failed check. */
const troubled = (output: string) =>
    output.split("\n").filter((line) => /WARNING|ERROR|retry|retrying|don't match|do not match/i.test(line));

describe("s3cmd against the service", function () {
    this.timeout(300_000);
    let chain: Chain;
    let service: RunningService;
    let work: string;
    const folder = files();
    const home = () => path.join(work, "home");

    before(async () => {
        chain = await startChain(s3Backends()[0]);
        service = await chain.startService();
        work = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-s3cmd-"));
        writeFolder(home(), folder);
        // Path-style (host_bucket without the bucket), plain HTTP, SigV4; its own config file, never ~/.s3cfg.
        const host = new URL(service.url).host;
        fs.writeFileSync(
            path.join(work, "s3cfg"),
            [
                "[default]",
                `access_key = ${service.accessKey.id}`,
                `secret_key = ${service.accessKey.secret}`,
                `host_base = ${host}`,
                `host_bucket = ${host}`,
                "use_https = False",
                "signature_v2 = False",
                "bucket_location = us-east-1",
                "",
            ].join("\n"),
            { mode: 0o600 },
        );
    });
    after(async () => {
        await chain?.stop();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    /** s3cmd with --debug; everything it printed, checked for retries and warnings. */
    async function s3cmd(...args: string[]): Promise<string> {
        const all = ["-c", path.join(work, "s3cfg"), "--debug", ...args];
        let output: string;
        try {
            const { stdout, stderr } = await execFileAsync("/usr/bin/s3cmd", all, {
                env: { PATH: process.env.PATH ?? "", HOME: work },
                maxBuffer: 256 * 1024 * 1024,
            });
            output = `${stdout}\n${stderr}`;
        } catch (err) {
            const { stderr } = err as { stderr?: string };
            throw new Error(`s3cmd ${args.join(" ")} failed: ${stderr?.slice(-3000)}`, { cause: err });
        }
        assert.deepEqual(troubled(output), [], `s3cmd ${args.join(" ")}: retry or warning lines (must be 0)`);
        return output;
    }

    it("puts 30 small files and a multipart one with no retry, gets them back byte for byte", async () => {
        await s3cmd("mb", "s3://s3cmd");
        const put = await s3cmd("put", "--recursive", "--multipart-chunk-size-mb=5", `${home()}/`, "s3://s3cmd/home/");
        assert.match(put, /Initiat|upload_id|uploadId/i, "the 12 MiB file went up in parts");
        const restored = path.join(work, "restored");
        fs.mkdirSync(restored);
        await s3cmd("get", "--recursive", "s3://s3cmd/home/", `${restored}/`);
        assert.deepEqual(filesIn(restored), Object.keys(folder).sort());
        for (const [name, content] of Object.entries(folder)) {
            assert.ok(fs.readFileSync(path.join(restored, name)).equals(content), name);
        }
    });

    it("syncs again with nothing to send: the listing's ETags are the files' MD5s", async () => {
        const sync = await s3cmd("sync", "--multipart-chunk-size-mb=5", `${home()}/`, "s3://s3cmd/home/");
        assert.doesNotMatch(
            sync,
            /^upload:/m,
            sync
                .split("\n")
                .filter((l) => !l.startsWith("DEBUG"))
                .join("\n"),
        );
    });
});
