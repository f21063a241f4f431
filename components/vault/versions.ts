// The Vault chart and image, pinned. Vault 1.21 rather than the 2.0 line the newest charts default to: the
// bootstrap and the configuration are written and tested against the 1.x API (and OpenBao 2.4, its open fork).
import type { PinnedChart, PinnedImage } from "../../lib/kube";

export const vault = {
    chart: {
        repo: "https://helm.releases.hashicorp.com",
        chart: "vault",
        version: "0.32.0",
        namespace: "vault",
    } satisfies PinnedChart,
    image: { repository: "hashicorp/vault", tag: "1.21.2" } satisfies PinnedImage,
};

/** The Vault Secrets Operator: syncs secrets from Vault into the apps' Kubernetes Secrets. */
export const vaultSecretsOperator = {
    chart: {
        repo: "https://helm.releases.hashicorp.com",
        chart: "vault-secrets-operator",
        version: "1.5.1",
        namespace: "vault-secrets-operator-system",
    } satisfies PinnedChart,
    images: {
        manager: { repository: "hashicorp/vault-secrets-operator", tag: "1.5.1" } satisfies PinnedImage,
        kubeRbacProxy: { repository: "quay.io/brancz/kube-rbac-proxy", tag: "v0.18.1" } satisfies PinnedImage,
    },
};
