#!/usr/bin/env bash
# On a server: waits until node K3S_NODE has joined and is Ready. Idempotent; prints nothing secret.
set -euo pipefail
: "${K3S_NODE:?K3S_NODE is required}"
for _ in $(seq 1 90); do
    if k3s kubectl wait --for=condition=Ready "node/$K3S_NODE" --timeout=2s >/dev/null 2>&1; then
        echo "k3s-member: $K3S_NODE is Ready"
        exit 0
    fi
    sleep 2
done
echo "k3s-member: node $K3S_NODE did not become Ready in 180 s" >&2
exit 1
