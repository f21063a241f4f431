// Where benchmarks write their figures: .bench/<name>-<time>.json (ignored by git), with the machine's
// conditions, since figures mean little without them.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { repoRoot } from "./tools";

/** All CPU time so far and the part of it a hypervisor gave to other guests (steal), from /proc/stat. */
function cpuTicks(): { total: number; steal: number } | undefined {
    try {
        // "cpu  user nice system idle iowait irq softirq steal ..." summed over all CPUs, in clock ticks.
        const fields = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 9);
        const ticks = fields.map(Number);
        return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7] };
    } catch {
        return undefined;
    }
}

// Taken when the benchmark loads this module: the report tells how much CPU was stolen while it ran.
const ticksAtStart = cpuTicks();

/** Writes the report with the machine's conditions and returns the file's path. */
export function writeBenchReport(name: string, note: string, figures: object): string {
    const when = new Date().toISOString();
    const report = {
        when,
        machine: {
            cpus: os.cpus().length,
            model: os.cpus()[0]?.model,
            loadAverage: os.loadavg(),
            stolenCpuPercent: stolenPercent(),
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

/** The share of CPU time taken by the hypervisor for other guests since the benchmark started. */
function stolenPercent(): number | undefined {
    const now = cpuTicks();
    if (!now || !ticksAtStart || now.total === ticksAtStart.total) return undefined;
    return (100 * (now.steal - ticksAtStart.steal)) / (now.total - ticksAtStart.total);
}
