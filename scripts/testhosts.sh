#!/usr/bin/env bash
# Test hosts on one machine: each a network namespace on a bridge, running its own sshd in a private mount
# namespace where /etc/wireguard and /run/wireguard are its own folders. Addresses come from 198.18.0.0/24
# (RFC 2544 benchmark range); nothing leaves the machine.
#
#   scripts/testhosts.sh up NAME COUNT DIR   start COUNT hosts; DIR gets keys, configs and hosts.json
#   scripts/testhosts.sh down NAME DIR       stop them and remove every namespace, link, process and mount
#
# NAME (a short prefix, at most 6 characters) keeps concurrent sets apart. Needs root, iproute2, sshd.
set -euo pipefail

subnet_prefix=198.18.0
die() { printf 'testhosts: %s\n' "$*" >&2; exit 1; }

down() {
  local name=$1 dir=$2 ns pid
  for ns in $(ip netns list | awk -v p="$name-" 'index($1, p) == 1 { print $1 }'); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 0.2
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
  ip link delete "$name-br" 2>/dev/null || true
  rm -rf "$dir"
}

start_host() { # name, index, dir
  local name=$1 i=$2 dir=$3 ns="$1-h$2" addr="$subnet_prefix.$((10 + $2))" home="$3/h$2"
  mkdir -p "$home/etc-wireguard" "$home/run-wireguard"
  chmod 700 "$home/etc-wireguard"
  ssh-keygen -q -t ed25519 -N "" -f "$home/ssh_host_ed25519_key"
  cat >"$home/sshd_config" <<EOF
ListenAddress $addr
Port 22
HostKey $home/ssh_host_ed25519_key
PidFile $home/sshd.pid
AuthorizedKeysFile $dir/client_key.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AcceptEnv WG_*
EOF
  ip netns add "$ns"
  ip link add "$name-v$i" type veth peer name eth0 netns "$ns"
  ip link set "$name-v$i" master "$name-br" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  # sshd (and all it starts: wg-quick, wireguard-go) sees only this host's WireGuard folders.
  ip netns exec "$ns" unshare --mount --propagation private sh -c "
    mount --bind '$home/etc-wireguard' /etc/wireguard &&
    mount --bind '$home/run-wireguard' /run/wireguard &&
    exec /usr/sbin/sshd -D -e -f '$home/sshd_config'" >"$home/sshd.log" 2>&1 &
  printf '{"name": "node-%s", "address": "%s", "namespace": "%s"}' "$i" "$addr" "$ns"
}

up() {
  local name=$1 count=$2 dir=$3 i hosts=()
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  [ ${#name} -le 6 ] || die "NAME '$name' is longer than 6 characters"
  command -v sshd >/dev/null || die "sshd missing: scripts/tools.sh host"
  down "$name" "$dir"
  mkdir -p "$dir" /etc/wireguard /run/wireguard /run/sshd
  ssh-keygen -q -t ed25519 -N "" -C "testhosts-$name" -f "$dir/client_key"
  ip link add "$name-br" type bridge
  ip addr add "$subnet_prefix.1/24" dev "$name-br"
  ip link set "$name-br" up
  for i in $(seq 1 "$count"); do hosts+=("$(start_host "$name" "$i" "$dir")"); done
  for i in $(seq 1 "$count"); do
    for _ in $(seq 1 50); do
      ip netns exec "$name-h$i" sh -c "exec 3<>/dev/tcp/$subnet_prefix.$((10 + i))/22" 2>/dev/null && break
      sleep 0.1
    done || die "sshd on host $i did not start: $(cat "$dir/h$i/sshd.log")"
  done
  (IFS=,; printf '[%s]\n' "${hosts[*]}") >"$dir/hosts.json"
  echo "$dir/hosts.json"
}

case ${1:-} in
  up) [ $# -eq 4 ] || die "usage: up NAME COUNT DIR"; up "$2" "$3" "$4" ;;
  down) [ $# -eq 3 ] || die "usage: down NAME DIR"; down "$2" "$3" ;;
  *) die "usage: $0 up NAME COUNT DIR | down NAME DIR" ;;
esac
