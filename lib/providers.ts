// Every provider of the program's own resources, by the name their state refers to (see dynamic.ts). The
// engine's dynamic-provider plugin loads this module by package name; a provider renamed here must keep its
// old name too, or resources already in a stack could no longer be updated or deleted.
import { loadable } from "./dynamic";
import { nodeInstallationProvider } from "./node-installation";
import { randomTokenProvider } from "./random-token";
import { remoteScriptProvider } from "./remote-script";
import { vaultInitializationProvider, vaultUnsealProvider } from "./vault/seal";
import { vaultAdminTokenProvider, vaultRootRevocationProvider, vaultWriteProvider } from "./vault/writes";

export const providers = {
    "remote-script": loadable(remoteScriptProvider),
    "random-token": loadable(randomTokenProvider),
    "node-installation": loadable(nodeInstallationProvider),
    "vault-initialization": loadable(vaultInitializationProvider),
    "vault-unseal": loadable(vaultUnsealProvider),
    "vault-write": loadable(vaultWriteProvider),
    "vault-admin-token": loadable(vaultAdminTokenProvider),
    "vault-root-revocation": loadable(vaultRootRevocationProvider),
};
