// What every command of the family tool checks first, without loading the engine or the program (a refused
// command answers at once): the project folder, the family's name, and the error that refuses a command.
import * as fs from "node:fs";
import * as path from "node:path";

export const repoRoot = path.resolve(__dirname, "..");

export interface WorkspaceOptions {
    /** The folder with Pulumi.yaml and the families' stack files; the clone itself by default. */
    readonly projectDir?: string;
    /** A Pulumi backend URL; without it PULUMI_BACKEND_URL, else a folder under XDG_STATE_HOME. */
    readonly backendUrl?: string;
}

/** A refused command: its message is all the person needs, and nothing was written. */
export class UsageError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "UsageError";
    }
}

export function projectDir(options: WorkspaceOptions): string {
    const dir = path.resolve(options.projectDir ?? repoRoot);
    if (!fs.existsSync(path.join(dir, "Pulumi.yaml"))) {
        throw new UsageError(`${dir} has no Pulumi.yaml: run the tool in a clone of peoples-cloud, or give --dir`);
    }
    return dir;
}

/** A family's name is its stack's name: a DNS label, so it can name hosts, interfaces and files too. */
export const FAMILY_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;

export function checkFamilyName(family: string | undefined): string {
    if (!family) throw new UsageError("name the family, e.g.: peoples-cloud new smith --host ...");
    if (!FAMILY_NAME.test(family)) {
        throw new UsageError(
            `'${family}' is not a family name: 2-32 characters of a-z, 0-9 and '-', starting with a letter`,
        );
    }
    return family;
}
