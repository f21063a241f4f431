#!/usr/bin/env bash
# Writes the manifest on stdin as K3S_MANIFEST.yaml into K3s's auto-deploy folder on this server, where K3s
# applies it (and re-applies it when it changes). Idempotent: the same content leaves the file untouched.
# K3S_DATA_DIR is K3s's --data-dir, when not the default.
set -euo pipefail
: "${K3S_MANIFEST:?K3S_MANIFEST is required}"
case $K3S_MANIFEST in
    *[!a-z0-9-]* | "") echo "k3s-manifest: '$K3S_MANIFEST' is not a manifest name (a-z, 0-9, '-')" >&2; exit 1 ;;
esac
dir=${K3S_DATA_DIR:-/var/lib/rancher/k3s}/server/manifests
[ -d "$dir" ] || { echo "k3s-manifest: $dir missing: is K3s installed as a server here?" >&2; exit 1; }
file=$dir/$K3S_MANIFEST.yaml
umask 077
# After a failure or a fatal signal, the EXIT trap removes the new file (once renamed, there is none).
trap 'rm -f "$file.new"' EXIT
cat >"$file.new"
if [ -f "$file" ] && cmp -s "$file" "$file.new"; then
    rm -f "$file.new"
    echo "k3s-manifest: $K3S_MANIFEST unchanged"
else
    # A rename, so K3s never reads half a file.
    mv "$file.new" "$file"
    echo "k3s-manifest: $K3S_MANIFEST written"
fi
