#!/usr/bin/env bash
# Waits, on a K3s server, until what the next step needs exists and serves: the namespaces in
# K3S_WAIT_NAMESPACES are active, the CRDs in K3S_WAIT_CRDS established, the deployments in
# K3S_WAIT_DEPLOYMENTS (namespace/name) available, the certificates in K3S_WAIT_CERTIFICATES (namespace/name)
# ready, the pods in K3S_WAIT_PODS (namespace/name) running, the secrets in K3S_WAIT_SECRETS (namespace/name)
# present (an operator writes them). Gives up after K3S_WAIT_SECONDS (default 600),
# naming what it was waiting for. Changes nothing, so running it twice is harmless.
set -euo pipefail
deadline=$((SECONDS + ${K3S_WAIT_SECONDS:-600}))
kubectl() { k3s kubectl "$@"; }

# `kubectl wait` fails at once on an object that does not exist yet: first wait for it to appear.
wait_for() { # kind, namespace ("" for cluster-scoped), name, what --for waits for
    local ns=()
    [ -z "$2" ] || ns=(-n "$2")
    until kubectl get "$1" "${ns[@]}" "$3" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "k3s-wait: $1 ${2:+$2/}$3 never appeared" >&2; exit 1; }
        sleep 3
    done
    local left=$((deadline - SECONDS))
    [ "$left" -gt 0 ] || left=1
    kubectl wait "$1" "${ns[@]}" "$3" --for="$4" --timeout="${left}s" >/dev/null 2>&1 || {
        echo "k3s-wait: $1 ${2:+$2/}$3 not ${4#condition=} in time" >&2
        exit 1
    }
}

for n in ${K3S_WAIT_NAMESPACES:-}; do wait_for namespace "" "$n" "jsonpath={.status.phase}=Active"; done
for crd in ${K3S_WAIT_CRDS:-}; do wait_for crd "" "$crd" condition=Established; done
for d in ${K3S_WAIT_DEPLOYMENTS:-}; do wait_for deployment "${d%%/*}" "${d#*/}" condition=Available; done
for c in ${K3S_WAIT_CERTIFICATES:-}; do wait_for certificate "${c%%/*}" "${c#*/}" condition=Ready; done
for s in ${K3S_WAIT_SECRETS:-}; do wait_for secret "${s%%/*}" "${s#*/}" "jsonpath={.metadata.name}=${s#*/}"; done
for p in ${K3S_WAIT_PODS:-}; do wait_for pod "${p%%/*}" "${p#*/}" "jsonpath={.status.phase}=Running"; done
echo "k3s-wait: ready"
