#!/usr/bin/env bash
# Lists the etcd snapshots K3s keeps on this server's own disk, one path per line (none: no output), for the
# family tool's `restore`. K3S_DATA_DIR is K3s's data folder, when not /var/lib/rancher/k3s (tests).
set -euo pipefail
dir=${K3S_DATA_DIR:-/var/lib/rancher/k3s}/server/db/snapshots
[ -d "$dir" ] || exit 0
find "$dir" -maxdepth 1 -type f -printf '%p\n' | sort
