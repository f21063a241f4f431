#!/usr/bin/env bash
# Creates this node's WireGuard private key on the node, once (mode 0600), and prints only its public key.
# The private key never leaves the node: nothing reads it but `wg pubkey` and wg-apply.sh, here. WG_DIR is
# the WireGuard folder, when not /etc/wireguard (tests).
set -euo pipefail
dir=${WG_DIR:-/etc/wireguard}
key=$dir/wg0.key
command -v wg >/dev/null 2>&1 || { echo "wg-keygen: wireguard-tools missing (wg-install.sh installs them)" >&2; exit 1; }
if [ ! -s "$key" ]; then
    mkdir -p "$dir"
    chmod 700 "$dir"
    umask 077
    # Written beside the key and renamed into place; after a failure or a fatal signal the EXIT trap removes
    # the new file.
    trap 'rm -f "$key.tmp"' EXIT
    wg genkey >"$key.tmp"
    mv "$key.tmp" "$key"
fi
chmod 600 "$key"
wg pubkey <"$key"
