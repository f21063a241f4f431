// Five-field cron schedules (minute hour day-of-month month day-of-week) as Kubernetes CronJobs read them:
// numbers, `*`, ranges, steps and lists; no names or macros. The longest gap between two runs sets how stale a
// backup may get before an alert, so the schema and the backup layer read a schedule the same way.

const FIELDS = [
    { min: 0, max: 59 },
    { min: 0, max: 23 },
    { min: 1, max: 31 },
    { min: 1, max: 12 },
    // 7 is Sunday too.
    { min: 0, max: 7 },
] as const;

/** The values one field allows, or undefined when it is not one this reader understands. */
function fieldValues(text: string, { min, max }: { min: number; max: number }): Set<number> | undefined {
    const values = new Set<number>();
    for (const part of text.split(",")) {
        const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
        if (!m) return undefined;
        const step = m[4] === undefined ? 1 : Number(m[4]);
        let [from, to] = m[1] === "*" ? [min, max] : [Number(m[2]), m[3] === undefined ? Number(m[2]) : Number(m[3])];
        // "5/15" means from 5 to the end, every 15.
        if (m[1] !== "*" && m[3] === undefined && m[4] !== undefined) to = max;
        if (step < 1 || from < min || to > max || from > to) return undefined;
        for (; from <= to; from += step) values.add(from);
    }
    return values;
}

export interface CronSchedule {
    minutes: Set<number>;
    hours: Set<number>;
    days: Set<number>;
    months: Set<number>;
    weekdays: Set<number>;
    /** Whether day-of-month and day-of-week were both restricted: then a day matching either runs. */
    eitherDay: boolean;
}

export function parseCron(schedule: string): CronSchedule | undefined {
    const parts = schedule.trim().split(/\s+/);
    if (parts.length !== 5) return undefined;
    const sets = parts.map((p, i) => fieldValues(p, FIELDS[i]));
    if (sets.some((s) => s === undefined || s.size === 0)) return undefined;
    const [minutes, hours, days, months, weekdays] = sets as Set<number>[];
    if (weekdays.has(7)) weekdays.add(0);
    return { minutes, hours, days, months, weekdays, eitherDay: parts[2] !== "*" && parts[4] !== "*" };
}

const MINUTE = 60_000;

/**
 * The longest time between two runs, in seconds, over two years from a leap year's start (UTC): what "one
 * interval" of the schedule is when its runs are uneven. Undefined for a schedule that does not parse or does
 * not run twice in that time (the 31st of February, the 29th only).
 */
export function longestIntervalSeconds(schedule: string): number | undefined {
    const cron = parseCron(schedule);
    if (!cron) return undefined;
    const start = Date.UTC(2028, 0, 1);
    const end = Date.UTC(2030, 0, 1);
    let first: number | undefined;
    let previous: number | undefined;
    let longest = 0;
    for (let day = start; day < end; day += 24 * 60 * MINUTE) {
        const d = new Date(day);
        if (!cron.months.has(d.getUTCMonth() + 1)) continue;
        const byDate = cron.days.has(d.getUTCDate());
        const byWeekday = cron.weekdays.has(d.getUTCDay());
        if (!(cron.eitherDay ? byDate || byWeekday : byDate && byWeekday)) continue;
        for (const h of [...cron.hours].sort((a, b) => a - b)) {
            for (const m of [...cron.minutes].sort((a, b) => a - b)) {
                const at = day + (h * 60 + m) * MINUTE;
                if (previous !== undefined) longest = Math.max(longest, at - previous);
                first ??= at;
                previous = at;
            }
        }
    }
    if (first === undefined || previous === first) return undefined;
    return longest / 1000;
}
