// A service's image as its Dockerfile assembles it, without Docker: its production dependencies installed by
// scripts/service-deps.sh (the Dockerfile's install step, the same command) and its src/ compiled by its
// tsconfig.build.json (the Dockerfile's `npm run build`), side by side as in the image's /app.
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { repoRoot } from "./tools";

export interface ServiceImage {
    /** The image's /app: node_modules/ and the compiled entry points. */
    dir: string;
    /** Every package in node_modules/, nested ones too, as name@version. */
    packages: string[];
    remove(): void;
}

export function assembleImage(service: string): ServiceImage {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `peoples-cloud-image-${service}-`));
    const remove = () => fs.rmSync(dir, { recursive: true, force: true });
    try {
        const listed = execFileSync("bash", [path.join(repoRoot, "scripts", "service-deps.sh"), service, dir], {
            encoding: "utf8",
        });
        const tsc = require.resolve("typescript/bin/tsc");
        const config = path.join(repoRoot, "services", service, "tsconfig.build.json");
        execFileSync(process.execPath, [tsc, "-p", config, "--outDir", dir], { encoding: "utf8" });
        return { dir, packages: listed.trim().split("\n"), remove };
    } catch (err) {
        remove();
        throw err;
    }
}

/**
 * The image's tests: it holds the service's production dependencies at the versions its package.json pins and
 * no @pulumi/* package, and each entry point loads with nothing but the image's files, so that only a missing
 * setting stops it.
 */
export function describeImage(service: string, options: { entryPoints: string[] }) {
    describe(`${service}'s image`, function () {
        this.timeout(300_000);
        let image: ServiceImage;
        before(() => (image = assembleImage(service)));
        after(() => image?.remove());

        it("holds the service's production dependencies and no @pulumi/* package", () => {
            const manifest = path.join(repoRoot, "services", service, "package.json");
            const pinned = (JSON.parse(fs.readFileSync(manifest, "utf8")) as { dependencies: Record<string, string> })
                .dependencies;
            assert.ok(Object.keys(pinned).length > 0, `${manifest} lists no dependencies`);
            for (const dependency of Object.entries(pinned).map(([name, version]) => `${name}@${version}`)) {
                assert.ok(image.packages.includes(dependency), `${dependency} is missing: ${image.packages.join(" ")}`);
            }
            assert.deepEqual(
                image.packages.filter((p) => p.startsWith("@pulumi/")),
                [],
            );
        });

        for (const entryPoint of options.entryPoints) {
            it(`runs ${entryPoint} with its own files only`, () => {
                const run = spawnSync(process.execPath, [entryPoint], {
                    cwd: image.dir,
                    env: { PATH: process.env.PATH },
                    encoding: "utf8",
                    timeout: 30_000,
                });
                const output = run.stdout + run.stderr;
                assert.doesNotMatch(output, /Cannot find module/);
                assert.match(output, new RegExp(`${service}: set [A-Z_]+`));
                assert.equal(run.status, 1);
            });
        }
    });
}
