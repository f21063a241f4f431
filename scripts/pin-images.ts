// Pins the program's default service images (`publishedImages` in components/apps/versions.ts) to the digests a
// release published. The images workflow runs it on a release tag and proposes the change as a pull request,
// so a family's stack takes the released images, by digest, without naming them itself.
//
//   tsx scripts/pin-images.ts [--file components/apps/versions.ts] storageS3Api=<repository>@sha256:<digest> \
//       storageKvApi=... vaultBackup=...
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { DIGEST_PINNED_IMAGE } from "../stacks/schema";

/** The images the program takes from a release, each a key of `publishedImages`. */
export const SERVICES = ["storageS3Api", "storageKvApi", "vaultBackup"] as const;
const DECLARATION = /(export const publishedImages: [^=]+= )\{[^;]*\};/;

/** The file's text with `images` as the published images; every service named once, each pinned by digest. */
export function pinImages(text: string, images: Record<string, string>): string {
    const unknown = Object.keys(images).filter((s) => !(SERVICES as readonly string[]).includes(s));
    if (unknown.length) throw new Error(`unknown service ${unknown.join(", ")} (known: ${SERVICES.join(", ")})`);
    const missing = SERVICES.filter((s) => !images[s]);
    if (missing.length) throw new Error(`no image for ${missing.join(", ")}`);
    for (const [service, image] of Object.entries(images)) {
        if (!DIGEST_PINNED_IMAGE.test(image)) throw new Error(`${service}: '${image}' is not pinned by digest`);
    }
    if (!DECLARATION.test(text)) throw new Error("no `export const publishedImages` declaration found");
    const body = SERVICES.map((s) => `    ${s}: ${JSON.stringify(images[s])},`).join("\n");
    return text.replace(DECLARATION, (_, head: string) => `${head}{\n${body}\n};`);
}

if (require.main === module) {
    const { values, positionals } = parseArgs({
        allowPositionals: true,
        options: { file: { type: "string", default: path.join(__dirname, "..", "components", "apps", "versions.ts") } },
    });
    try {
        const images: Record<string, string> = Object.fromEntries(
            positionals.map((p) => p.split(/=(.*)/s, 2) as [string, string]),
        );
        const text = fs.readFileSync(values.file, "utf8");
        fs.writeFileSync(values.file, pinImages(text, images));
        console.log(`pinned ${SERVICES.map((s) => `${s}=${images[s]}`).join(" ")} in ${values.file}`);
    } catch (err) {
        console.error(`pin-images: ${(err as Error).message}`);
        process.exit(2);
    }
}
