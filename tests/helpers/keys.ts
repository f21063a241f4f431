// SSH keys made for one test, and a search of the disk for their text. A key's files are removed as soon as it
// is made, so its text in any file afterwards was written by the run under test.
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface SshKey {
    /** OpenSSH private key text. */
    privateKey: string;
    /** The authorized_keys line. */
    publicKey: string;
}

export function newSshKey(comment: string): SshKey {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peoples-cloud-testkey-"));
    try {
        const file = path.join(dir, "key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
        return { privateKey: fs.readFileSync(file, "utf8"), publicKey: fs.readFileSync(`${file}.pub`, "utf8") };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** The machine's temporary folders: where an SSH client's key file, or any other left file, would be. */
export const TEMP_FOLDERS = [os.tmpdir(), "/tmp", "/var/tmp", "/dev/shm"];

/**
 * The files under `folders` (symbolic links not followed) that hold the private key's text: any of its full
 * base64 lines but the first, which every unencrypted OpenSSH key of a type shares.
 */
export function filesHoldingKey(privateKey: string, folders: string[]): string[] {
    const needles = privateKey
        .trim()
        .split("\n")
        .slice(2, -1)
        .filter((line) => line.length === 70);
    assert.ok(needles.length >= 3, "not an OpenSSH private key");
    return filesHolding(needles, folders);
}

/** The files under `folders` (symbolic links not followed) that hold any of `needles`. */
export function filesHolding(needles: string[], folders: string[]): string[] {
    const existing = [...new Set(folders)].filter((f) => fs.existsSync(f));
    // Exit 1: nothing found; 2: a file was unreadable or went away meanwhile (the matches are printed still).
    const grep = spawnSync("grep", ["-rlsaF", ...needles.flatMap((n) => ["-e", n]), "--", ...existing], {
        encoding: "utf8",
        maxBuffer: 16 * 1024 * 1024,
    });
    assert.ok(grep.status !== null && grep.status <= 2, `grep failed: ${grep.stderr}`);
    return [...new Set(grep.stdout.split("\n").filter(Boolean))].sort();
}
