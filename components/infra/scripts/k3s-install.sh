#!/usr/bin/env bash
# Installs K3s at K3S_VERSION as K3S_ROLE (server or agent) with the config on stdin, and waits until the
# node serves. Idempotent: a node at that version with that config is left alone; a changed config restarts
# the service. K3S_EXTERNAL_IP is the node's public address (for LoadBalancer services). K3S_AIRGAP_DIR, when
# set, holds what the operator supplied instead of downloads: the `k3s` binary, `install.sh` of that release
# and the `k3s-airgap-images-*.tar*` image archive. K3S_CONFIG_DIR is the config folder, when not
# /etc/rancher/k3s (tests).
set -euo pipefail
: "${K3S_VERSION:?K3S_VERSION is required}" "${K3S_ROLE:?K3S_ROLE is required}"
case $K3S_ROLE in
    server) service=k3s ;;
    agent) service=k3s-agent ;;
    *) echo "k3s-install: K3S_ROLE is server or agent, not '$K3S_ROLE'" >&2; exit 1 ;;
esac
dir=${K3S_CONFIG_DIR:-/etc/rancher/k3s}
config=$dir/config.yaml
installer=""
# No temporary file outlives the script: after a failure or a fatal signal the EXIT trap removes the new
# config and the downloaded installer.
trap 'rm -f "$config.new" ${installer:+"$installer"}' EXIT
umask 077
mkdir -p "$dir"
[ -s "$dir/cluster-token" ] || { echo "k3s-install: $dir/cluster-token missing (k3s-token.sh writes it)" >&2; exit 1; }

cat >"$config.new"
# An address only: a bare-metal host reached by DNS name gets none, and ServiceLB uses its node IP.
if [[ ${K3S_EXTERNAL_IP:-} =~ ^[0-9a-fA-F.:]+$ ]]; then
    printf 'node-external-ip: "%s"\n' "$K3S_EXTERNAL_IP" >>"$config.new"
fi
config_changed=true
if [ -f "$config" ] && cmp -s "$config" "$config.new"; then config_changed=false; fi
mv "$config.new" "$config"

installed=$( (k3s --version 2>/dev/null || true) | awk 'NR == 1 { print $3 }')
if [ "$installed" != "$K3S_VERSION" ] || ! systemctl cat "$service" >/dev/null 2>&1; then
    export INSTALL_K3S_VERSION=$K3S_VERSION INSTALL_K3S_EXEC=$K3S_ROLE
    if [ -n "${K3S_AIRGAP_DIR:-}" ]; then
        for f in k3s install.sh; do
            [ -s "$K3S_AIRGAP_DIR/$f" ] || { echo "k3s-install: $K3S_AIRGAP_DIR/$f missing (air-gapped install)" >&2; exit 1; }
        done
        images=("$K3S_AIRGAP_DIR"/k3s-airgap-images-*.tar*)
        [ -s "${images[0]}" ] || { echo "k3s-install: no k3s-airgap-images-*.tar* in $K3S_AIRGAP_DIR" >&2; exit 1; }
        supplied=$("$K3S_AIRGAP_DIR/k3s" --version | awk 'NR == 1 { print $3 }')
        [ "$supplied" = "$K3S_VERSION" ] || {
            echo "k3s-install: $K3S_AIRGAP_DIR/k3s is $supplied, not $K3S_VERSION" >&2
            exit 1
        }
        install -m 0755 "$K3S_AIRGAP_DIR/k3s" /usr/local/bin/k3s
        mkdir -p /var/lib/rancher/k3s/agent/images
        cp "${images[@]}" /var/lib/rancher/k3s/agent/images/
        INSTALL_K3S_SKIP_DOWNLOAD=true sh "$K3S_AIRGAP_DIR/install.sh" >/dev/null
    else
        command -v curl >/dev/null 2>&1 || { echo "k3s-install: curl is needed for the online install" >&2; exit 1; }
        # The installer of the pinned release, not the moving get.k3s.io.
        installer=$(mktemp)
        curl -sfL "https://raw.githubusercontent.com/k3s-io/k3s/$K3S_VERSION/install.sh" -o "$installer"
        sh "$installer" >/dev/null
        rm -f "$installer"
    fi
    echo "k3s-install: K3s $K3S_VERSION installed as $K3S_ROLE"
elif [ "$config_changed" = true ]; then
    systemctl restart "$service"
    echo "k3s-install: config changed, $service restarted"
else
    echo "k3s-install: K3s $K3S_VERSION up to date"
fi
systemctl enable "$service" >/dev/null 2>&1

for _ in $(seq 1 90); do
    if [ "$K3S_ROLE" = server ]; then
        k3s kubectl get --raw /readyz >/dev/null 2>&1 && exit 0
    else
        systemctl is-active --quiet "$service" && exit 0
    fi
    sleep 2
done
echo "k3s-install: $service not ready after 180 s; see journalctl -u $service" >&2
exit 1
