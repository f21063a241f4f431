#!/usr/bin/env bash
# Installs wireguard-tools when `wg` is missing (Debian/Ubuntu, as on Hetzner's images); changes nothing
# when it is there. wireguard-go comes along for kernels without WireGuard.
set -euo pipefail
if command -v wg >/dev/null 2>&1 && command -v wg-quick >/dev/null 2>&1; then
    echo "wg-install: wireguard-tools present"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || { echo "wg-install: no apt-get; install wireguard-tools by hand" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq wireguard-tools wireguard-go >/dev/null
echo "wg-install: wireguard-tools installed"
