#!/usr/bin/env bash
# Empties K3S_MANIFEST.yaml in K3s's auto-deploy folder: K3s then deletes the objects it applied from it.
# (K3s ignores a removed file, leaving its objects in place; an empty one makes it prune them.)
set -euo pipefail
: "${K3S_MANIFEST:?K3S_MANIFEST is required}"
file=${K3S_DATA_DIR:-/var/lib/rancher/k3s}/server/manifests/$K3S_MANIFEST.yaml
if [ -f "$file" ]; then
    : >"$file"
    echo "k3s-manifest: $K3S_MANIFEST emptied; K3s deletes its objects"
fi
