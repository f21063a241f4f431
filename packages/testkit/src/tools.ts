// The outside tools the tests run (OpenBao, MinIO, rclone, the Pulumi CLI), built by the repository's
// scripts/tools.sh into a cache outside the repository.
import { execFileSync } from "node:child_process";
import * as path from "node:path";

/** The repository this package is a workspace of (packages/testkit/src is three folders down). */
export const repoRoot = path.resolve(__dirname, "..", "..", "..");

/** A bin/ folder holding the tools of these tiers; builds nothing (run `npm run tools` first). */
export function toolsBinDir(...tiers: string[]): string {
    return execFileSync("bash", [path.join(repoRoot, "scripts", "tools.sh"), "--bin-dir", ...tiers], {
        encoding: "utf8",
    }).trim();
}
