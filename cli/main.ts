// peoples-cloud: the family tool. Makes a family's stack, brings it up, shows it, adds its devices. Every
// command checks all its input before it writes anything; `--json` prints one JSON document on stdout for
// scripts (progress still goes to stderr as text).
import { parseArgs, type ParseArgsConfig } from "node:util";
import { addDevice, deviceConfig, joinDevice, phoneSteps, removeDevice } from "./devices";
import type { Stack } from "@pulumi/pulumi/automation";
import { qrcode, restoreModule, statusModule, workspaceModule } from "./lazy";
import { newFamily, type NewOptions } from "./new";
import { checkFamilyName, projectDir, UsageError, type WorkspaceOptions } from "./project";
import { Progress } from "./progress";
import { checkKitFile, recoverFromKit, writeRecoveryKit } from "./recovery-kit";
import { askHidden, confirm } from "./prompt";
import { familySettings } from "./stack-file";
import type { RestoreAccess } from "./restore";
import type { Action, UpScope } from "./workspace";

const USAGE = `peoples-cloud — a family's own cloud

  peoples-cloud new <family> (--hetzner [--location fsn1] [--servers 1] [--agents 0]
                              | --host <name>=<address>[,role=agent][,user=root][,port=22] ...)
                             [--domain <name>] [--acme-email <address>] [--admin-cidr <cidr> ...]
                             [--member <name> ...] [--ssh-key <file>] [--without-k3s]
  peoples-cloud preview <family> [--policy-pack <dir>]
  peoples-cloud up <family> [--policy-pack <dir>]
  peoples-cloud destroy <family> [--yes]
  peoples-cloud status <family>
  peoples-cloud recovery-kit <family> --out <file>
  peoples-cloud recover <kit file>
  peoples-cloud restore <family> (--latest | --snapshot <time>) [--overwrite-vault] [--yes]
  peoples-cloud device add <name> --family <family> --owner <member> --public-key <key>
  peoples-cloud device remove <name> --family <family>
  peoples-cloud device config <name> --family <family> [--key-file <path>] [--qr]
  peoples-cloud device join <name> --family <family> [--config-dir /etc/wireguard] [--interface <name>]
                                   [--key-file <path>] [--wait <seconds>]

Every command: --json (one JSON document on stdout), --dir <project folder> (the clone by default),
--backend <Pulumi backend URL> (default: PULUMI_BACKEND_URL, else ~/.local/state/peoples-cloud/backend).
The Hetzner token is read from HCLOUD_TOKEN or asked for without echo; secrets are encrypted with
PULUMI_CONFIG_PASSPHRASE(_FILE), else ~/.config/peoples-cloud/passphrase (made on first use).`;

const common = {
    json: { type: "boolean" },
    dir: { type: "string" },
    backend: { type: "string" },
    help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

function parse<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O, positionals: number) {
    let parsed;
    try {
        parsed = parseArgs({ args, options: { ...common, ...options }, allowPositionals: true, strict: true });
    } catch (err) {
        throw new UsageError(`${(err as Error).message.split("\n")[0]} (see peoples-cloud --help)`);
    }
    if (parsed.positionals.length > positionals) {
        throw new UsageError(`unexpected argument '${parsed.positionals[positionals]}' (see peoples-cloud --help)`);
    }
    const values = parsed.values as Record<string, unknown>;
    const workspace: WorkspaceOptions = {
        projectDir: values.dir as string | undefined,
        backendUrl: values.backend as string | undefined,
    };
    return { values, positionals: parsed.positionals, workspace };
}

/** A command's result: `data` for --json, `text` for a person. */
interface Result {
    data: unknown;
    text: string;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

async function engineAction(action: Action, args: string[]): Promise<Result> {
    const { values, positionals, workspace } = parse(
        args,
        { "policy-pack": { type: "string" }, yes: { type: "boolean" } },
        1,
    );
    const family = checkFamilyName(positionals[0]);
    if (action !== "destroy" && values.yes) throw new UsageError("--yes is for destroy");
    if (
        action === "destroy" &&
        !values.yes &&
        !(await confirm(`Destroy every server and all data of '${family}'? Type ${family} to confirm: `, family))
    ) {
        throw new UsageError("not destroyed: confirm by typing the family's name, or give --yes");
    }
    const stack = await workspaceModule().selectFamily(workspace, family);
    return runWithProgress(stack, family, action, { policyPack: values["policy-pack"] as string | undefined });
}

/** Runs the engine on the family's stack, its progress on stderr; a failure says how to resume. */
async function runWithProgress(
    stack: Stack,
    family: string,
    action: Action,
    options: { policyPack?: string; scope?: UpScope } = {},
): Promise<Result> {
    const { policyPack, scope } = options;
    const progress = new Progress(action === "preview", say);
    say(`${action} of the family '${family}':`);
    const started = Date.now();
    try {
        const { changes } = await workspaceModule().runAction(stack, action, {
            scope,
            policyPacks: policyPack ? [policyPack] : undefined,
            onEvent: progress.onEvent,
        });
        const seconds = Math.round((Date.now() - started) / 1000);
        const summary = Object.entries(changes)
            .map(([op, n]) => `${n} ${op}`)
            .join(", ");
        return {
            data: { family, action, changes, seconds },
            text: `${action} done in ${seconds} s: ${summary || "nothing to do"}`,
        };
    } catch (err) {
        const detail = progress.errors.length
            ? progress.errors.join("\n")
            : (err as Error).message.split("\n").slice(-8).join("\n");
        const resume =
            action === "preview"
                ? ""
                : `\nRun peoples-cloud ${action} ${family} again to resume: finished steps are kept.`;
        throw new Error(`${action} of '${family}' failed:\n${detail}${resume}`, { cause: err });
    } finally {
        progress.stop();
    }
}

async function restore(args: string[]): Promise<Result> {
    const { values, positionals, workspace } = parse(
        args,
        {
            latest: { type: "boolean" },
            snapshot: { type: "string" },
            "overwrite-vault": { type: "boolean" },
            yes: { type: "boolean" },
        },
        1,
    );
    const family = checkFamilyName(positionals[0]);
    if (values.latest && values.snapshot !== undefined)
        throw new UsageError("give --latest or --snapshot <time>, not both");
    const at = values.snapshot === undefined ? undefined : parseSnapshotTime(values.snapshot as string);
    const settings = familySettings(projectDir(workspace), family);

    const stack = await workspaceModule().selectFamily(workspace, family);
    const outputs = Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value as unknown]));
    const r = restoreModule();
    const access = r.restoreAccess(family, outputs, settings);
    const newMachines = await r.newMachines(access);
    r.refuseLostBackups(access, newMachines);
    const reached = await r.reachBackups(access);
    try {
        return await restoreReached(stack, family, reached.access, {
            newMachines,
            latest: values.latest as boolean | undefined,
            at,
            overwriteVault: values["overwrite-vault"] as boolean | undefined,
            yes: values.yes as boolean | undefined,
        });
    } finally {
        reached.close();
    }
}

async function restoreReached(
    stack: Stack,
    family: string,
    access: RestoreAccess,
    values: { newMachines: string[]; latest?: boolean; at?: Date; overwriteVault?: boolean; yes?: boolean },
): Promise<Result> {
    const r = restoreModule();
    const snapshots = await r.listSnapshots(access);
    if (!values.latest && !values.at) {
        throw new UsageError(
            `choose what to restore: --latest, or --snapshot <time> (the newest snapshots taken at or before ` +
                `it)\n${r.describeSnapshots(snapshots)}`,
        );
    }
    const chosen = r.chooseSnapshots(snapshots, values.at ? { at: values.at } : { latest: true });
    const plan = await r.prepareRestore(access, chosen, {
        overwriteVault: Boolean(values.overwriteVault),
        newMachines: values.newMachines,
    });
    say(
        `Restoring '${family}': the cluster to its etcd snapshot of ${plan.etcd.takenAt.toISOString()}, Vault to ` +
            `its backup of ${plan.vault.takenAt.toISOString()}.\nThis loses:\n  - ${plan.lost.join("\n  - ")}`,
    );
    if (!values.yes && !(await confirm(`Type ${family} to restore: `, family)))
        throw new UsageError("not restored: confirm by typing the family's name, or give --yes; nothing was changed");
    const { MACHINE_RESOURCES, KUBECONFIG_READ } = workspaceModule();
    await r.runRestore(access, plan, say, () =>
        runWithProgress(stack, family, "up", { scope: { target: MACHINE_RESOURCES } }),
    );
    say("restored; now bringing the rest of the family's cloud in line with its stack:");
    // A new first server's kubeconfig was read from the cluster the reset replaced.
    const firstIsNew = plan.newMachines.includes(access.servers[0].name);
    const up = await runWithProgress(stack, family, "up", {
        scope: firstIsNew ? { replace: [KUBECONFIG_READ] } : undefined,
    });
    const restored = { etcd: plan.etcd, vault: { key: plan.vault.key, takenAt: plan.vault.takenAt }, lost: plan.lost };
    return {
        data: { family, restored, up: up.data },
        text: `Restored '${family}' (cluster ${plan.etcd.takenAt.toISOString()}, Vault ${plan.vault.takenAt.toISOString()}). ${up.text}`,
    };
}

/** `--snapshot`: an ISO 8601 time, with a zone (2026-12-07T03:00:00Z). */
function parseSnapshotTime(text: string): Date {
    const at = new Date(text);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text) || Number.isNaN(at.getTime()))
        throw new UsageError(`--snapshot '${text}' is not a time such as 2026-12-07T03:00:00Z`);
    return at;
}

async function device(args: string[]): Promise<Result> {
    const [sub, ...rest] = args;
    const options = {
        family: { type: "string", short: "f" },
        owner: { type: "string" },
        "public-key": { type: "string" },
        "key-file": { type: "string" },
        "config-dir": { type: "string" },
        interface: { type: "string" },
        wait: { type: "string" },
        qr: { type: "boolean" },
    } as const;
    const { values, positionals, workspace } = parse(rest, options, 1);
    const name = positionals[0];
    if (!name) throw new UsageError(`name the device: peoples-cloud device ${sub ?? "add"} <name> --family <family>`);
    const family = checkFamilyName(values.family as string | undefined);
    const allowed: Record<string, string[]> = {
        add: ["owner", "public-key"],
        remove: [],
        config: ["key-file", "qr"],
        join: ["key-file", "config-dir", "interface", "wait"],
    };
    if (!sub || !(sub in allowed))
        throw new UsageError(`unknown device command '${sub ?? ""}' (add, remove, config, join)`);
    for (const flag of Object.keys(options)) {
        if (flag !== "family" && values[flag] !== undefined && !allowed[sub].includes(flag)) {
            throw new UsageError(`--${flag} is not an option of device ${sub}`);
        }
    }
    const interfaceName = (values.interface as string | undefined) ?? `pc-${family}`.slice(0, 15);
    const configDir = (values["config-dir"] as string | undefined) ?? "/etc/wireguard";
    const keyFile = (values["key-file"] as string | undefined) ?? `${configDir}/${interfaceName}.key`;
    switch (sub) {
        case "add": {
            if (!values.owner) throw new UsageError("device add needs --owner <member>");
            if (!values["public-key"])
                throw new UsageError("device add needs --public-key <the device's WireGuard public key>");
            const device = { name, owner: values.owner as string, publicKey: values["public-key"] as string };
            const { meshAddress } = addDevice(family, device, workspace);
            return {
                data: { family, device: { ...device, meshAddress }, next: `peoples-cloud up ${family}` },
                text: `Added ${name} (${device.owner}) at ${meshAddress}. Bring it into the mesh: peoples-cloud up ${family}`,
            };
        }
        case "remove":
            removeDevice(family, name, workspace);
            return {
                data: { family, removed: name, next: `peoples-cloud up ${family}` },
                text: `Removed ${name}. Take it out of the mesh: peoples-cloud up ${family}`,
            };
        case "config": {
            const config = await deviceConfig(family, name, keyFile, workspace);
            let text = `# wg-quick file for ${name}; its private key is read from ${keyFile} on the device.\n${config.wgQuick}\n${phoneSteps(family, config)}`;
            if (values.qr) {
                const QRCode = qrcode();
                for (const p of config.peers) {
                    text += `\n\n${p.node}'s public key:\n${await QRCode.toString(p.publicKey, { type: "terminal", small: true })}`;
                }
            }
            return { data: config, text };
        }
        case "join": {
            if (values.wait !== undefined && !/^\d+$/.test(values.wait as string)) {
                throw new UsageError(`--wait '${values.wait as string}' is not a number of seconds`);
            }
            if (!/^[a-zA-Z0-9_=+.-]{1,15}$/.test(interfaceName))
                throw new UsageError(`--interface '${interfaceName}' is not an interface name`);
            const result = await joinDevice(
                family,
                name,
                { ...workspace, configDir, interfaceName, keyFile, waitSeconds: Number(values.wait ?? 1800) },
                say,
            );
            return {
                data: result,
                text:
                    result.state === "up"
                        ? `${name} is in the mesh at ${result.meshAddress}.`
                        : `Not listed yet; run device join again once it is added.`,
            };
        }
    }
    throw new UsageError(`unknown device command '${sub}'`);
}

async function run(argv: string[]): Promise<Result> {
    const [command, ...args] = argv;
    if (!command || command === "--help" || command === "-h" || command === "help")
        return { data: { usage: USAGE }, text: USAGE };
    if (args.includes("--help") || args.includes("-h")) return { data: { usage: USAGE }, text: USAGE };
    switch (command) {
        case "new": {
            const { values, positionals, workspace } = parse(
                args,
                {
                    hetzner: { type: "boolean" },
                    location: { type: "string" },
                    servers: { type: "string" },
                    agents: { type: "string" },
                    host: { type: "string", multiple: true },
                    domain: { type: "string" },
                    "acme-email": { type: "string" },
                    "admin-cidr": { type: "string", multiple: true },
                    member: { type: "string", multiple: true },
                    "ssh-key": { type: "string" },
                    "without-k3s": { type: "boolean" },
                },
                1,
            );
            const options: NewOptions = {
                ...workspace,
                hetzner: values.hetzner as boolean | undefined,
                location: values.location as string | undefined,
                servers: values.servers as string | undefined,
                agents: values.agents as string | undefined,
                host: values.host as string[] | undefined,
                domain: values.domain as string | undefined,
                acmeEmail: values["acme-email"] as string | undefined,
                adminCidr: values["admin-cidr"] as string[] | undefined,
                member: values.member as string[] | undefined,
                sshKey: values["ssh-key"] as string | undefined,
                withoutK3s: values["without-k3s"] as boolean | undefined,
            };
            const result = await newFamily(
                positionals[0],
                options,
                async () =>
                    process.env.HCLOUD_TOKEN ??
                    (await askHidden("Hetzner Cloud API token (read & write; not shown): ")),
            );
            return {
                data: result,
                text:
                    `Made the family '${result.family}': settings in ${result.stackFile}, secrets encrypted, state in ${result.backend}.\n` +
                    `Next: ${result.next}`,
            };
        }
        case "preview":
        case "up":
        case "destroy":
            return engineAction(command, args);
        case "status": {
            const { positionals, workspace } = parse(args, {}, 1);
            const family = checkFamilyName(positionals[0]);
            const { describeStatus, familyStatus } = statusModule();
            const status = await familyStatus(family, workspace);
            return { data: status, text: describeStatus(status) };
        }
        case "device":
            return device(args);
        case "restore":
            return restore(args);
        case "recovery-kit": {
            const { values, positionals, workspace } = parse(args, { out: { type: "string" } }, 1);
            const family = checkFamilyName(positionals[0]);
            const out = checkKitFile(values.out as string | undefined);
            return writeRecoveryKit(family, out, workspace);
        }
        case "recover": {
            const { positionals, workspace } = parse(args, {}, 1);
            if (!positionals[0]) throw new UsageError("name the kit: peoples-cloud recover <file>");
            return recoverFromKit(positionals[0], workspace);
        }
    }
    throw new UsageError(`unknown command '${command}' (see peoples-cloud --help)`);
}

async function main(): Promise<void> {
    const argv = process.argv.slice(2);
    const json = argv.includes("--json");
    try {
        const { data, text } = await run(argv);
        process.stdout.write(`${json ? JSON.stringify(data, null, 2) : text}\n`);
    } catch (err) {
        const usage = err instanceof UsageError;
        const message = err instanceof Error ? err.message : String(err);
        if (json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
        process.stderr.write(`peoples-cloud: ${message}\n`);
        process.exitCode = usage ? 2 : 1;
    }
}

void main();
