#!/usr/bin/env bash
# Deletes the Vault pods VAULT_PODS (namespace VAULT_NAMESPACE) so their StatefulSet starts them again: after a
# snapshot is forced in, a running Vault server keeps its old seal until it restarts. They come back sealed.
set -euo pipefail
: "${VAULT_NAMESPACE:?VAULT_NAMESPACE is required}" "${VAULT_PODS:?VAULT_PODS is required}"
# shellcheck disable=SC2086 # VAULT_PODS is a list of pod names
k3s kubectl delete pod -n "$VAULT_NAMESPACE" --wait=true $VAULT_PODS
