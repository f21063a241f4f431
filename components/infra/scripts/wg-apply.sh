#!/usr/bin/env bash
# Writes wg0.conf from the config on stdin (everything but the private key, which is added from the node's
# own key file) and applies it: `wg syncconf` when wg0 is up, so live tunnels to unchanged peers stay up;
# `wg-quick up` otherwise. Enables wg-quick@wg0 at boot where systemd runs. Falls back to wireguard-go
# where the kernel has no WireGuard.
set -euo pipefail
dir=/etc/wireguard
key=$dir/wg0.key
conf=$dir/wg0.conf
[ -s "$key" ] || { echo "wg-apply: $key missing; run wg-keygen.sh first" >&2; exit 1; }

umask 077
awk -v keyfile="$key" '
    /^[[:space:]]*PrivateKey/ { print "wg-apply: the config must not carry a private key" > "/dev/stderr"; exit 2 }
    { print }
    /^\[Interface\]/ && !done { getline k < keyfile; print "PrivateKey = " k; done = 1 }
    END { if (!done) { print "wg-apply: the config has no [Interface] section" > "/dev/stderr"; exit 2 } }
' >"$conf.tmp"
mv "$conf.tmp" "$conf"

if ! ip link add wg-probe0 type wireguard 2>/dev/null; then
    export WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
else
    ip link delete wg-probe0
fi

if ip link show wg0 >/dev/null 2>&1; then
    stripped=$(mktemp)
    wg-quick strip wg0 >"$stripped"
    wg syncconf wg0 "$stripped"
    rm -f "$stripped"
    echo "wg-apply: wg0 peers synced"
else
    wg-quick up wg0 >&2
    echo "wg-apply: wg0 up"
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl enable wg-quick@wg0 >/dev/null 2>&1 || true
fi
