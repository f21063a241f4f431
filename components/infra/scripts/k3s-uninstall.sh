#!/usr/bin/env bash
# Removes K3s from a node that leaves the cluster (after it was drained and deleted from it), so that a
# restart cannot make it rejoin. Does nothing where K3s is not installed.
set -euo pipefail
for uninstall in /usr/local/bin/k3s-uninstall.sh /usr/local/bin/k3s-agent-uninstall.sh; do
    if [ -x "$uninstall" ]; then
        "$uninstall" >/dev/null 2>&1
        echo "k3s-uninstall: removed with $uninstall"
        exit 0
    fi
done
echo "k3s-uninstall: K3s not installed"
