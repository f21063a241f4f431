// lib/cron.ts: the longest gap between a schedule's runs, which sets when a backup counts as missing.
import * as assert from "node:assert/strict";
import { longestIntervalSeconds } from "../../lib/cron";

const hours = (h: number) => h * 3600;

describe("lib/cron.ts", () => {
    it("finds the longest gap of even and uneven schedules", () => {
        for (const [schedule, seconds] of [
            ["30 */6 * * *", hours(6)],
            ["*/15 * * * *", 900],
            ["15 2 * * *", hours(24)],
            // Weekdays at 01:05 and 13:05: Friday 13:05 to Monday 01:05.
            ["5 1,13 * * 1-5", hours(60)],
            // Sundays (0 and 7 alike).
            ["0 3 * * 7", hours(7 * 24)],
            // The first of the month: 31 days after the first of a 31-day month.
            ["0 0 1 * *", hours(31 * 24)],
            // Day of month or day of week, when both are set: the 15th or any Monday.
            ["0 0 15 * 1", hours(7 * 24)],
            // From minute 5 on, every 20: 5, 25, 45, then 5 again.
            ["5/20 * * * *", 20 * 60],
        ] as const) {
            assert.equal(longestIntervalSeconds(schedule), seconds, schedule);
        }
    });

    it("reads no names, macros, out-of-range values, or a schedule that does not run twice", () => {
        for (const schedule of [
            "0 3 * * MON",
            "@daily",
            "60 * * * *",
            "0 24 * * *",
            "0 0 31 2 *",
            "0 0 29 2 *",
            "* * *",
        ]) {
            assert.equal(longestIntervalSeconds(schedule), undefined, schedule);
        }
    });
});
