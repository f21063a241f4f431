#!/usr/bin/env bash
# Brings a device's tunnel up from its wg-quick file (the private key is read from the device's key file by
# the file's PostUp), replacing the tunnel when it is up already. Falls back to wireguard-go where the kernel
# has no WireGuard, as the nodes do. Linux and macOS (wireguard-tools).
#   device-up.sh CONFIG_FILE
set -euo pipefail
conf=${1:?usage: device-up.sh CONFIG_FILE}
name=$(basename "$conf" .conf)
command -v wg-quick >/dev/null || { echo "device-up: wg-quick not found; install wireguard-tools" >&2; exit 1; }
if [ "$(uname -s)" = Linux ] && ! ip link add wg-probe0 type wireguard 2>/dev/null; then
    export WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
else
    ip link delete wg-probe0 2>/dev/null || true
fi
if wg show "$name" >/dev/null 2>&1; then wg-quick down "$conf" >&2; fi
wg-quick up "$conf" >&2
