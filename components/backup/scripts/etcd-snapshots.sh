#!/usr/bin/env bash
# Writes K3s's etcd snapshot settings (schedule, retention and, with a target, the S3 bucket and its
# credentials), given on stdin, into a drop-in of the server's config — 0600, as it holds the credentials, and
# never on a command line — then restarts K3s when they changed and waits until it serves again (K3S_WAIT_SECONDS,
# default 300). Run as a remote step's delete script (its $0, the step's name, ends in "(delete)"), it removes
# the drop-in instead. K3S_CONFIG_DIR is the config folder, when not /etc/rancher/k3s (tests).
set -euo pipefail
dir=${K3S_CONFIG_DIR:-/etc/rancher/k3s}/config.yaml.d
file=$dir/50-etcd-snapshots.yaml
trap 'rm -f "$file.new"' EXIT
umask 077
mkdir -p "$dir"

if [[ $0 == *"(delete)" ]]; then
    [ -f "$file" ] || exit 0
    rm -f "$file"
else
    cat >"$file.new"
    if [ -f "$file" ] && cmp -s "$file" "$file.new"; then
        echo "etcd-snapshots: settings unchanged"
        exit 0
    fi
    mv "$file.new" "$file"
fi

systemctl restart k3s || { echo "etcd-snapshots: restarting K3s failed" >&2; exit 1; }
deadline=$((SECONDS + ${K3S_WAIT_SECONDS:-300}))
until k3s kubectl get --raw=/readyz >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "etcd-snapshots: K3s did not serve again after the restart" >&2; exit 1; }
    sleep 2
done
echo "etcd-snapshots: K3s restarted with the new snapshot settings"
