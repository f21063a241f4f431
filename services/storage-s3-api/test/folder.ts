// A family's folder for the tests that run real S3 clients: what it holds, written out and read back.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** Names with a space, a plus, a percent and non-ASCII letters, an empty file, and one above 8 MiB. */
export function familyFiles(): Record<string, Buffer> {
    return {
        "photos/2026/beach day.jpg": randomBytes(300_000),
        "photos/2026/a+b%c.txt": Buffer.from("plus and percent"),
        "docs/ñandú/empty": Buffer.alloc(0),
        "docs/big.bin": randomBytes(12 * 1024 * 1024 + 3),
        "notes.txt": Buffer.from("hello"),
    };
}

export function writeFolder(root: string, files: Record<string, Buffer>): void {
    for (const [name, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
        fs.writeFileSync(path.join(root, name), content);
    }
}

/** Every file under `root`, relative and in sorted order. */
export function filesIn(root: string): string[] {
    return fs
        .readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
        .sort();
}
