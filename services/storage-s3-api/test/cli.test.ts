// A common S3 command-line client against the service, unchanged: Debian's AWS CLI (botocore). It puts a
// folder up (one file above its multipart threshold), lists it, gets it back byte for byte and deletes it.
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { s3Backends } from "@peoples-cloud/testkit";
import { type Chain, type RunningService, startChain } from "./chain";
import { familyFiles, filesIn, writeFolder } from "./folder";

const execFileAsync = promisify(execFile);

const files = familyFiles();

describe("the AWS CLI against the service", function () {
    this.timeout(300_000);
    let chain: Chain;
    let service: RunningService;
    let work: string;
    const operations = new Set<string>();
    const home = () => path.join(work, "home");

    before(async () => {
        // The client and the service are what is tested: on one backend, the first listed.
        chain = await startChain(s3Backends()[0]);
        service = await chain.startService({ observe: (event) => operations.add(event.operation) });
        work = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-cli-"));
        writeFolder(home(), files);
    });
    after(async () => {
        await chain?.stop();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    async function run(command: string, args: string[], env: Record<string, string>): Promise<string> {
        try {
            const { stdout } = await execFileAsync(command, args, {
                env: { PATH: process.env.PATH ?? "", HOME: work, ...env },
            });
            return stdout;
        } catch (err) {
            const { stderr, stdout } = err as { stderr?: string; stdout?: string };
            throw new Error(
                `${path.basename(command)} ${args.join(" ")} failed: ${stdout?.slice(-1000)} ${stderr?.slice(-2000)}`,
                { cause: err },
            );
        }
    }

    /** Checks a folder brought back against what went up. */
    function assertSame(restored: string) {
        assert.deepEqual(filesIn(restored), Object.keys(files).sort());
        for (const [name, content] of Object.entries(files)) {
            assert.ok(fs.readFileSync(path.join(restored, name)).equals(content), name);
        }
    }

    it("the AWS CLI: mb, cp --recursive (multipart above 8 MiB), ls, sync back, rm", async () => {
        // Path-style addressing, from a config file; the keys only in the environment.
        const config = path.join(work, "aws-config");
        fs.writeFileSync(config, "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n");
        const env = {
            AWS_CONFIG_FILE: config,
            AWS_SHARED_CREDENTIALS_FILE: path.join(work, "no-credentials"),
            AWS_ACCESS_KEY_ID: service.accessKey.id,
            AWS_SECRET_ACCESS_KEY: service.accessKey.secret,
            AWS_PAGER: "",
        };
        // Debian's AWS CLI, which tools.sh installs, whatever else is on PATH.
        const aws = (...args: string[]) => run("/usr/bin/aws", ["--endpoint-url", service.url, ...args], env);
        await aws("s3", "mb", "s3://awscli");
        await aws("s3", "cp", home(), "s3://awscli/home", "--recursive");
        assert.ok(operations.has("CompleteMultipartUpload"), [...operations].join(" "));
        const listed = (await aws("s3", "ls", "s3://awscli/home/", "--recursive"))
            .split("\n")
            .filter(Boolean)
            .map((line) => line.replace(/^\S+ \S+ +\d+ home\//, ""));
        assert.deepEqual(listed.sort(), Object.keys(files).sort());
        const restored = path.join(work, "aws-restored");
        await aws("s3", "sync", "s3://awscli/home", restored);
        assertSame(restored);
        await aws("s3", "rm", "s3://awscli/home", "--recursive");
        assert.equal(await aws("s3", "ls", "s3://awscli/home/", "--recursive").catch(() => ""), "");
    });
});
