// Where benchmarks write their figures: .bench/<name>-<time>.json (ignored by git), with the machine's
// conditions, since figures mean little without them.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { repoRoot } from "./stackConfig";

/** Writes the report with the machine's conditions and returns the file's path. */
export function writeBenchReport(name: string, note: string, figures: object): string {
    const when = new Date().toISOString();
    const report = {
        when,
        machine: {
            cpus: os.cpus().length,
            model: os.cpus()[0]?.model,
            loadAverage: os.loadavg(),
            totalMemoryGiB: os.totalmem() / 1024 ** 3,
            node: process.version,
            note,
        },
        ...figures,
    };
    const out = path.join(repoRoot, ".bench", `${name}-${when.replace(/[:.]/g, "-")}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(report, null, 2));
    return out;
}
