// `peoples-cloud recovery-kit <family> --out <file>`: what a restore needs besides the snapshots, in one file
// to keep offline. The K3s token, Vault's unseal keys, the backups' key, the apps' keys live only in the
// family's Pulumi state; the kit is that state and the stack's settings as they are stored — every secret
// still encrypted with the family's passphrase — so it is safe on a USB stick, and useless without the
// passphrase, which is kept apart.
import * as fs from "node:fs";
import * as path from "node:path";
import { automation, workspaceModule } from "./lazy";
import { checkFamilyName, type WorkspaceOptions, projectDir, UsageError } from "./project";
import { stackFilePath } from "./stack-file";

export const KIT_KIND = "peoples-cloud recovery kit";

export interface RecoveryKit {
    kind: typeof KIT_KIND;
    family: string;
    madeAt: string;
    /** Pulumi.<family>.yaml as it is: its settings, its encryption salt and its encrypted secrets. */
    stackFile: string;
    /** The stack's state (`pulumi stack export`): its secrets are ciphertext. */
    state: unknown;
}

/** The refusals, before anything is read or written. */
export function checkKitFile(file: string | undefined): string {
    if (!file) throw new UsageError("recovery-kit needs --out <file>, e.g. --out /media/usb/smith-recovery-kit.json");
    const out = path.resolve(file);
    if (fs.existsSync(out)) throw new UsageError(`${out} exists: a kit never overwrites a file; give a new name`);
    if (!fs.existsSync(path.dirname(out))) throw new UsageError(`the folder ${path.dirname(out)} does not exist`);
    return out;
}

/** What the state holds that a restore needs, in words, from the stack's outputs. */
export function kitHolds(outputs: Record<string, unknown>): string[] {
    const has = (key: string) => outputs[key] !== undefined;
    return [
        ...(has("serverAccess") ? ["the SSH key that reaches the servers", "the K3s token"] : []),
        ...(has("vaultUnsealKeys") ? ["Vault's unseal keys and admin token"] : []),
        ...(has("backupKey") ? ["the key of Vault's backups"] : []),
        ...(has("members") ? ["the members' S3 keys and document-store tokens, the storage's ETag and name keys"] : []),
        "the stack's settings and secrets (a backup bucket's credentials, a Hetzner token)",
    ];
}

export async function writeRecoveryKit(family: string, out: string, options: WorkspaceOptions) {
    const stackFile = fs.readFileSync(stackFilePath(projectDir(options), family), "utf8");
    const { exportEncrypted, passphraseFile, selectFamily } = workspaceModule();
    const stack = await selectFamily(options, family);
    const outputs = Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    const kit: RecoveryKit = {
        kind: KIT_KIND,
        family,
        madeAt: new Date().toISOString(),
        stackFile,
        state: exportEncrypted(stack),
    };
    fs.writeFileSync(out, `${JSON.stringify(kit, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    const holds = kitHolds(outputs);
    const passphrase = process.env.PULUMI_CONFIG_PASSPHRASE_FILE
        ? process.env.PULUMI_CONFIG_PASSPHRASE_FILE
        : process.env.PULUMI_CONFIG_PASSPHRASE
          ? "PULUMI_CONFIG_PASSPHRASE"
          : passphraseFile();
    const text = [
        `Wrote the recovery kit of '${family}' to ${out}: the stack's settings and state, every secret in it`,
        `encrypted with your passphrase. It holds ${holds.join("; ")}.`,
        "Keep it offline, and the passphrase apart from it:",
        `  1. Copy ${path.basename(out)} to a USB stick kept at home (better: two sticks in two places) —`,
        "     not only on this computer, never on the family's servers.",
        `  2. Write the passphrase on paper and keep it apart from the stick (it is in ${passphrase}).`,
        "     The kit is useless without it, and a thief with only the stick learns nothing.",
        "  3. Make a new kit after adding members, devices or servers.",
        'With both, the family\'s cloud comes back on another computer: README, "Backups and restore".',
    ].join("\n");
    return { data: { family, file: out, holds }, text };
}

/**
 * `peoples-cloud recover <kit>`: the family back on this computer from its kit — its stack file in the project
 * folder and its state in the backend, with the same passphrase. Refuses a family that is here already.
 */
export async function recoverFromKit(file: string, options: WorkspaceOptions) {
    let kit: RecoveryKit;
    try {
        kit = JSON.parse(fs.readFileSync(file, "utf8")) as RecoveryKit;
    } catch (err) {
        throw new UsageError(`${file} cannot be read as a recovery kit: ${(err as Error).message}`);
    }
    if (kit.kind !== KIT_KIND || typeof kit.stackFile !== "string" || !kit.state)
        throw new UsageError(`${file} is not a peoples-cloud recovery kit`);
    const family = checkFamilyName(kit.family);
    const stackFile = stackFilePath(projectDir(options), family);
    if (fs.existsSync(stackFile)) throw new UsageError(`${stackFile} exists: the family '${family}' is here already`);
    const { hasFamily, openWorkspace } = workspaceModule();
    const workspace = await openWorkspace({ ...options, secrets: false });
    if (await hasFamily(workspace, family))
        throw new UsageError(
            `the backend ${workspace.envVars.PULUMI_BACKEND_URL} holds the family '${family}' already`,
        );
    fs.writeFileSync(stackFile, kit.stackFile, { flag: "wx" });
    try {
        const stack = await automation().Stack.create(family, await openWorkspace(options));
        await stack.importStack(kit.state as Parameters<typeof stack.importStack>[0]);
    } catch (err) {
        fs.rmSync(stackFile);
        throw err;
    }
    return {
        data: { family, stackFile, madeAt: kit.madeAt },
        text: `The family '${family}' is back as of ${kit.madeAt}: settings in ${stackFile}. Next: peoples-cloud status ${family}`,
    };
}
