#!/usr/bin/env bash
# Writes wg0.conf from the config on stdin (everything but the private key, which is added from the node's
# own key file) and applies it: `wg syncconf` when wg0 is up, so live tunnels to unchanged peers stay up;
# `wg-quick up` otherwise. Enables wg-quick@wg0 at boot where systemd runs. Falls back to wireguard-go
# where the kernel has no WireGuard. WG_DIR is the WireGuard folder, when not /etc/wireguard (tests).
set -euo pipefail
dir=${WG_DIR:-/etc/wireguard}
key=$dir/wg0.key
conf=$dir/wg0.conf
[ -s "$key" ] || { echo "wg-apply: $key missing; run wg-keygen.sh first" >&2; exit 1; }

# The config holds the private key, so it is written nowhere but beside wg0.conf (0600 in the 0700 folder)
# and renamed into place. The EXIT trap removes it after a failure or a fatal signal (bash runs it then too);
# one left by SIGKILL is overwritten by the next run.
umask 077
trap 'rm -f "$conf.tmp"' EXIT
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
    # The stripped config holds the private key too: it stays in this shell and reaches wg on a pipe.
    stripped=$(wg-quick strip wg0)
    wg syncconf wg0 <(printf '%s\n' "$stripped")
    echo "wg-apply: wg0 peers synced"
else
    wg-quick up wg0 >&2
    echo "wg-apply: wg0 up"
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl enable wg-quick@wg0 >/dev/null 2>&1 || true
fi
