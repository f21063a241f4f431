#!/usr/bin/env bash
# On a remaining server: drains node K3S_NODE and deletes it from the cluster; for a server, K3s's finalizer
# then removes its etcd member. A node already gone is fine, so a re-run after a failure resumes.
set -euo pipefail
: "${K3S_NODE:?K3S_NODE is required}"
if ! k3s kubectl get "node/$K3S_NODE" >/dev/null 2>&1; then
    echo "k3s-drain: $K3S_NODE is not in the cluster"
    exit 0
fi
# Pods whose node stops answering never finish terminating: drain gives up after its timeout, and deleting
# the node lets the pod garbage collector remove them.
k3s kubectl drain "node/$K3S_NODE" --ignore-daemonsets --delete-emptydir-data --timeout=300s >&2 ||
    echo "k3s-drain: drain of $K3S_NODE timed out; deleting it anyway" >&2
k3s kubectl delete "node/$K3S_NODE" --timeout=120s >&2
echo "k3s-drain: $K3S_NODE removed from the cluster"
