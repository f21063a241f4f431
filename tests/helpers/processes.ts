// The machine's processes as /proc shows them, for tests that kill a run and look at what it left behind.
import * as fs from "node:fs";

/** Running, not gone nor a zombie waiting for the machine's init to reap it. */
export function isRunning(pid: number | string): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
    } catch {
        return false;
    }
}

/** A process's command line, its arguments joined by spaces ("" once it is gone). */
export function commandLine(pid: number): string {
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
    } catch {
        return "";
    }
}

/** Every running process below `pid`: its children, their children, and so on. */
export function descendantsOf(pid: number): number[] {
    const children = new Map<number, number[]>();
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        let stat: string;
        try {
            stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
        } catch {
            continue;
        }
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    }
    const found: number[] = [];
    for (let queue = [pid]; queue.length > 0;) {
        const next = children.get(queue.shift()!) ?? [];
        found.push(...next);
        queue.push(...next);
    }
    return found.filter(isRunning);
}
