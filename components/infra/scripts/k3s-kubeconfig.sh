#!/usr/bin/env bash
# Prints the cluster's admin kubeconfig with its server at K3S_API_ADDRESS (the first server's mesh address,
# which operators reach from the mesh); the resource keeps it as a secret output.
set -euo pipefail
: "${K3S_API_ADDRESS:?K3S_API_ADDRESS is required}"
file=/etc/rancher/k3s/k3s.yaml
[ -s "$file" ] || { echo "k3s-kubeconfig: $file missing; is this a K3s server?" >&2; exit 1; }
sed -E "s#^( *server: https://)[^/]+:6443#\\1$K3S_API_ADDRESS:6443#" "$file"
