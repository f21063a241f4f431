#!/usr/bin/env bash
# Writes the cluster token from stdin to the node's token file (0600), only when it differs; never prints it.
# K3s reads it through `token-file` in its config, so the token is on no command line and in no log.
# K3S_CONFIG_DIR is the config folder, when not /etc/rancher/k3s (tests).
set -euo pipefail
dir=${K3S_CONFIG_DIR:-/etc/rancher/k3s}
file=$dir/cluster-token
# The token is written beside its file and renamed into place; after a failure or a fatal signal the EXIT
# trap removes the new file.
trap 'rm -f "$file.tmp"' EXIT
umask 077
mkdir -p "$dir"
token=$(cat)
[ -n "$token" ] || { echo "k3s-token: no token on stdin" >&2; exit 1; }
if [ -s "$file" ] && [ "$(cat "$file")" = "$token" ]; then
    echo "k3s-token: unchanged"
    exit 0
fi
printf '%s\n' "$token" >"$file.tmp"
mv "$file.tmp" "$file"
echo "k3s-token: written"
