#!/usr/bin/env bash
# One node's part of restoring K3s from an etcd snapshot, run by the family tool's `restore` on each node in
# turn. K3S_RESTORE_ROLE=first: stop K3s, reset the cluster to the snapshot K3S_SNAPSHOT (a name in the S3
# target, which the snapshot settings' drop-in names, or a path on this server), start K3s, and delete the
# node passwords the snapshot holds for K3S_FORGET_NODES (nodes on new machines, which could not join under
# their names otherwise). Any other server: stop K3s, move its etcd data aside (kept, not deleted: under
# db.before-restore-<time>), start K3s so it rejoins the restored cluster with the token it has. An agent
# (on a new machine): restart K3s's agent, which fetches the restored cluster's certificates. A server waits
# until it serves (K3S_WAIT_SECONDS, default 600). K3S_DATA_DIR is K3s's data folder, when not
# /var/lib/rancher/k3s (tests).
set -euo pipefail
: "${K3S_RESTORE_ROLE:?K3S_RESTORE_ROLE is first, other or agent}"
data=${K3S_DATA_DIR:-/var/lib/rancher/k3s}/server
fail() { echo "k3s-restore: $*" >&2; exit 1; }

if [ "$K3S_RESTORE_ROLE" = agent ]; then
    systemctl restart k3s-agent || fail "restarting K3s's agent failed"
    echo "k3s-restore: agent restarted"
    exit 0
fi
systemctl stop k3s || fail "stopping K3s failed"
case $K3S_RESTORE_ROLE in
    first)
        : "${K3S_SNAPSHOT:?K3S_SNAPSHOT names the snapshot}"
        k3s server --cluster-reset --cluster-reset-restore-path="$K3S_SNAPSHOT" >&2 ||
            fail "the cluster reset from snapshot $K3S_SNAPSHOT failed"
        ;;
    other)
        if [ -d "$data/db" ]; then mv "$data/db" "$data/db.before-restore-$(date +%Y%m%dT%H%M%S)"; fi
        ;;
    *) fail "K3S_RESTORE_ROLE is first, other or agent, not '$K3S_RESTORE_ROLE'" ;;
esac
systemctl start k3s || fail "starting K3s failed"
deadline=$((SECONDS + ${K3S_WAIT_SECONDS:-600}))
until k3s kubectl get --raw=/readyz >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "K3s did not serve again after the restore"
    sleep 2
done
for node in ${K3S_FORGET_NODES:-}; do
    k3s kubectl -n kube-system delete secret "$node.node-password.k3s" --ignore-not-found >&2 ||
        fail "forgetting the node password of $node failed"
done
echo "k3s-restore: $K3S_RESTORE_ROLE server restored"
