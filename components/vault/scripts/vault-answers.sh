#!/usr/bin/env bash
# Waits until the Vault server in each pod of VAULT_PODS (namespace VAULT_NAMESPACE) answers `vault status`,
# sealed (exit 2) or not (exit 0): a running container is not yet a listening server. At most 300 s.
set -euo pipefail
: "${VAULT_NAMESPACE:?VAULT_NAMESPACE is required}" "${VAULT_PODS:?VAULT_PODS is required}"
for pod in $VAULT_PODS; do
    for attempt in $(seq 1 100); do
        code=0
        k3s kubectl exec -n "$VAULT_NAMESPACE" "$pod" -- vault status >/dev/null 2>&1 || code=$?
        case $code in
            0 | 2) break ;;
        esac
        [ "$attempt" -lt 100 ] || { echo "vault-answers: $pod does not answer vault status (exit $code)" >&2; exit 1; }
        sleep 3
    done
done
echo "vault-answers: $VAULT_PODS answer"
