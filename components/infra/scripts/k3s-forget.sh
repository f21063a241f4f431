#!/usr/bin/env bash
# On the first server, before node K3S_NODE is installed on a reinstalled machine (NODE_INSTALLATION, the
# generation of its installation, above 1): deletes the node from the cluster, and with it its node password
# (and, for a server, its etcd member), so that the new installation may join under the same name. Nothing to
# do for a node's first installation, nor for a node the cluster does not have. Idempotent.
set -euo pipefail
: "${K3S_NODE:?K3S_NODE is required}"
if [ "${NODE_INSTALLATION:-1}" -le 1 ]; then
    echo "k3s-forget: $K3S_NODE is on its first installation"
    exit 0
fi
k3s kubectl delete "node/$K3S_NODE" --ignore-not-found --timeout=120s >&2
k3s kubectl -n kube-system delete secret "$K3S_NODE.node-password.k3s" --ignore-not-found >&2
echo "k3s-forget: $K3S_NODE's previous installation is forgotten"
