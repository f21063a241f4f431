// Vault's configuration as resources that run the Vault CLI through the same operator as the bootstrap
// (`k3s kubectl exec` in a pod over SSH in a cluster, a local process in tests), with the token on stdin:
// - VaultWrite: one API path written with data (a mount, a policy, a role, a key's config);
// - VaultAdminToken: the admin policy and an orphan periodic token with it, created with the root token and
//   from then on maintained with itself (each `up` renews it once less than half its period is left);
// - VaultRootRevocation: the root token revoked once the configuration is in place.
// They stand in for @pulumi/vault, whose plugin cannot be built on this machine (see the README's "Seams").
import type * as pulumi from "@pulumi/pulumi";
import { DynamicResource, type Provider } from "../dynamic";
import { runVault, type VaultOperator, type VaultServer } from "./operator";

interface WriteInputs {
    operator: VaultOperator;
    token: string;
    /** The API path written (`vault write <path> -`, a POST in Vault's HTTP API). */
    path: string;
    data: Record<string, unknown>;
    /**
     * Set once and never rewritten, for writes that fail or start over when repeated (mounts, auth methods,
     * audit devices, a CA): skipped when `key` is set in what `read` returns; a change to `data` is refused.
     */
    once?: { read: string; key: string };
    /** Deleted with the resource; without it the setting stays in Vault (mounts and keys keep data). */
    deletePath?: string;
    /** Where `pulumi refresh` reads the setting back, when not at `path` (a key's config shows on the key). */
    readPath?: string;
}

async function readData(operator: VaultOperator, token: string, path: string): Promise<Record<string, unknown>> {
    const out = await runVault(operator, `read ${path}`, ["read", "-format=json", path], { token });
    return (JSON.parse(out) as { data?: Record<string, unknown> }).data ?? {};
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The data at `path`, or undefined when Vault has nothing there (a sealed or unreachable Vault throws). */
async function readIfPresent(
    operator: VaultOperator,
    token: string,
    path: string,
): Promise<Record<string, unknown> | undefined> {
    try {
        return await readData(operator, token, path);
    } catch (error) {
        if (/ failed: No value found at /.test(String(error))) return undefined;
        throw error;
    }
}

type Scalar = string | number | boolean;
const isScalar = (v: unknown): v is Scalar => ["string", "number", "boolean"].includes(typeof v);
/** Values Vault hands back as they were written: scalars of the same type and lists of them. */
const comparable = (written: unknown, live: unknown) =>
    (isScalar(written) && typeof live === typeof written) ||
    (Array.isArray(written) && Array.isArray(live) && (written as unknown[]).concat(live).every(isScalar));

/**
 * The written data with each value Vault reads back differently (a policy edited by hand, a role widened)
 * replaced by Vault's: the next `up` sees the difference and writes the code's value again. Values Vault
 * normalises (durations come back as seconds) are not compared.
 */
function withDrift(written: Record<string, unknown>, live: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(
        Object.entries(written).map(([k, v]) => [k, comparable(v, live[k]) && !same(v, live[k]) ? live[k] : v]),
    );
}

async function write(inputs: WriteInputs): Promise<void> {
    if (inputs.once && (await readData(inputs.operator, inputs.token, inputs.once.read))[inputs.once.key]) return;
    await runVault(inputs.operator, `write ${inputs.path}`, ["write", "-format=json", inputs.path, "-"], {
        token: inputs.token,
        stdin: JSON.stringify(inputs.data),
    });
}

export const vaultWriteProvider: Provider<WriteInputs, WriteInputs> = {
    async create(inputs) {
        await write(inputs);
        return { id: inputs.path, outs: inputs };
    },
    diff(_id, olds, news) {
        const changed = (["operator", "token", "data", "once", "deletePath"] as const).some(
            (k) => !same(olds[k], news[k]),
        );
        return Promise.resolve({
            changes: changed || olds.path !== news.path,
            replaces: olds.path !== news.path ? ["path"] : [],
        });
    },
    async update(_id, olds, news) {
        if (news.once && !same(olds.data, news.data)) {
            throw new Error(
                `vault write ${news.path} on ${news.operator.name}: it is set once and holds data; change it ` +
                    `with the Vault CLI (e.g. \`vault secrets tune\`), then put the new values here`,
            );
        }
        if (!news.once && (!same(olds.data, news.data) || !same(olds.token, news.token))) await write(news);
        return { outs: news };
    },
    /** For `pulumi refresh`: a setting gone from Vault leaves the state, so the next `up` writes it again. */
    async read(id, props) {
        if (!props) return { id, props };
        if (props.once) {
            const listed = await readIfPresent(props.operator, props.token, props.once.read);
            return listed?.[props.once.key] ? { id, props } : {};
        }
        const live = await readIfPresent(props.operator, props.token, props.readPath ?? props.path);
        return live ? { id, props: { ...props, data: withDrift(props.data, live) } } : {};
    },
    async delete(_id, olds) {
        if (olds.deletePath) {
            await runVault(olds.operator, `delete ${olds.deletePath}`, ["delete", olds.deletePath], {
                token: olds.token,
            });
        }
    },
};

/** One Vault API path written: the fields of the write above, with the server and token as the program has them. */
export type VaultWriteArgs = Readonly<Omit<WriteInputs, "operator" | "token" | "data">> & {
    /** What is written; a secret Output when it holds secrets (it then stays encrypted in the state). */
    readonly data: pulumi.Input<Record<string, unknown>>;
    /** The server the Vault CLI runs against. */
    readonly operator: VaultServer;
    /** Secret: the token the write is made with (the admin token). */
    readonly token: pulumi.Input<string>;
};

export class VaultWrite extends DynamicResource {
    constructor(name: string, args: VaultWriteArgs, opts: pulumi.CustomResourceOptions) {
        super("vault-write", { module: "vault", name: "Write" }, name, args, {
            ...opts,
            additionalSecretOutputs: ["operator", "token"],
        });
    }
}

interface AdminInputs {
    operator: VaultOperator;
    rootToken: string;
    policy: string;
    periodHours: number;
    /** The servers' seal status from this run's bootstrap: reading it puts the token's check after the unseal. */
    sealed: boolean[];
}

interface AdminOutputs extends AdminInputs {
    token: string;
    accessor: string;
}

const ADMIN_POLICY_PATH = "sys/policies/acl/admin";

async function writeAdminPolicy(inputs: AdminInputs, token: string): Promise<void> {
    await runVault(inputs.operator, `write ${ADMIN_POLICY_PATH}`, ["write", ADMIN_POLICY_PATH, "-"], {
        token,
        stdin: JSON.stringify({ policy: inputs.policy }),
    });
}

/** Seconds the token has left: its TTL, which renewing sets back to the period. */
async function ttlLeft(inputs: AdminOutputs): Promise<number> {
    const out = await runVault(inputs.operator, "token lookup (admin)", ["token", "lookup", "-format=json"], {
        token: inputs.token,
    });
    return (JSON.parse(out) as { data: { ttl: number } }).data.ttl;
}

export const vaultAdminTokenProvider: Provider<AdminInputs, AdminOutputs> = {
    async create(inputs) {
        await writeAdminPolicy(inputs, inputs.rootToken);
        const out = await runVault(
            inputs.operator,
            "token create (admin)",
            [
                ...["token", "create", "-format=json", "-orphan", "-policy=admin"],
                ...[`-period=${inputs.periodHours}h`, "-display-name=peoples-cloud-admin"],
            ],
            { token: inputs.rootToken },
        );
        const auth = (JSON.parse(out) as { auth: { client_token: string; accessor: string } }).auth;
        return { id: auth.accessor, outs: { ...inputs, token: auth.client_token, accessor: auth.accessor } };
    },
    /** Changed policy or period, or a token past half its period: the live TTL decides, as seal status does. */
    async diff(_id, olds, news) {
        if (olds.policy !== news.policy || olds.periodHours !== news.periodHours) return { changes: true };
        if (!same(olds.operator, news.operator)) return { changes: true };
        // Not known yet (a preview with servers to unseal): the token is checked, and renewed, after that.
        if (!Array.isArray(news.sealed) || news.sealed.some((s) => s !== false)) return { changes: true };
        return { changes: (await ttlLeft(olds)) < (news.periodHours * 3600) / 2 };
    },
    async update(_id, olds, news) {
        const outs = { ...news, token: olds.token, accessor: olds.accessor };
        if (olds.policy !== news.policy) await writeAdminPolicy(outs, olds.token);
        await runVault(outs.operator, "token renew (admin)", ["token", "renew"], {
            token: olds.token,
        });
        return { outs };
    },
    // Deleting the resource leaves the token and policy in Vault: it is the only way in once root is revoked.
};

export class VaultAdminToken extends DynamicResource {
    /** Secret. */
    declare readonly token: pulumi.Output<string>;
    constructor(
        name: string,
        args: {
            operator: VaultServer;
            rootToken: pulumi.Input<string>;
            policy: string;
            periodHours: number;
            sealed: pulumi.Input<boolean[]>;
        },
        opts: pulumi.CustomResourceOptions,
    ) {
        super(
            "vault-admin-token",
            { module: "vault", name: "AdminToken" },
            name,
            { ...args, token: undefined, accessor: undefined },
            { ...opts, additionalSecretOutputs: ["operator", "rootToken", "token"] },
        );
    }
}

interface RevocationInputs {
    operator: VaultOperator;
    rootToken: string;
}

export const vaultRootRevocationProvider: Provider<RevocationInputs, RevocationInputs> = {
    async create(inputs) {
        try {
            await runVault(inputs.operator, "token revoke (root)", ["token", "revoke", "-self"], {
                token: inputs.rootToken,
            });
        } catch (error) {
            // Revoked already (a run that stopped after revoking): Vault no longer knows the token.
            if (!/permission denied|bad token|invalid token/i.test(String(error))) throw error;
        }
        return { id: "root-token", outs: inputs };
    },
    diff(_id, olds, news) {
        return Promise.resolve({ changes: !same(olds.operator, news.operator) });
    },
    update(_id, _olds, news) {
        return Promise.resolve({ outs: news });
    },
};

export class VaultRootRevocation extends DynamicResource {
    constructor(
        name: string,
        args: { operator: VaultServer; rootToken: pulumi.Input<string> },
        opts: pulumi.CustomResourceOptions,
    ) {
        super("vault-root-revocation", { module: "vault", name: "RootRevocation" }, name, args, {
            ...opts,
            additionalSecretOutputs: ["operator", "rootToken"],
        });
    }
}
