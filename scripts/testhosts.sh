#!/usr/bin/env bash
# Test hosts on one machine: each a network namespace on a bridge, running its own sshd in a private mount
# namespace where /etc/wireguard, /run/wireguard, /etc/rancher/k3s and /var/lib/peoples-cloud are its own
# folders (under DIR, removed with it), so a host's keys, config, K3s token and installation mark are written
# neither on the machine nor on another host.
# Nothing leaves the machine.
#
#   scripts/testhosts.sh up LABEL COUNT DIR   start COUNT hosts; DIR gets keys, configs and hosts.json
#   scripts/testhosts.sh down DIR             stop them and remove every namespace, link, process and mount
#
# Each set takes a free slot N (0-255) under a lock: its own 198.18.N.0/24 (RFC 2544 benchmark range) and
# links and namespaces named pcN-*, so sets started by concurrent test runs never share an address or a name.
# Sets whose owner (the process that called `up`) has died are cleaned by the next `up`. Needs root, iproute2, sshd.
set -euo pipefail

state=/run/peoples-cloud-testhosts
die() { printf 'testhosts: %s\n' "$*" >&2; exit 1; }

teardown_slot() { # slot
  local prefix="pc$1" ns pid
  for ns in $(ip netns list | awk -v p="$prefix-" 'index($1, p) == 1 { print $1 }'); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 0.2
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
  ip link delete "$prefix-br" 2>/dev/null || true
}

release_slot() { # slot, dir
  teardown_slot "$1"
  rm -rf "$2" "$state/${1:?}"
}

# Cleans every slot whose owner is gone, then prints the first free slot and claims it for $owner and $dir.
claim_slot() { # owner, dir
  local owner=$1 dir=$2 n file old_owner old_dir free=""
  mkdir -p "$state"
  exec 9>"$state/lock"
  flock 9
  for n in $(seq 0 255); do
    file="$state/$n"
    if [ -f "$file" ]; then
      read -r old_owner old_dir <"$file"
      kill -0 "$old_owner" 2>/dev/null && continue
      release_slot "$n" "$old_dir"
    fi
    [ -n "$free" ] || free=$n
  done
  [ -n "$free" ] || die "all 256 slots are taken"
  printf '%s %s\n' "$owner" "$dir" >"$state/$free"
  echo "$free"
}

start_host() { # slot, index, dir
  local slot=$1 i=$2 dir=$3 ns="pc$1-h$2" addr="198.18.$1.$((10 + $2))" home="$3/h$2"
  mkdir -p "$home/etc-wireguard" "$home/run-wireguard" "$home/etc-rancher-k3s" "$home/var-lib-peoples-cloud"
  chmod 700 "$home/etc-wireguard" "$home/etc-rancher-k3s"
  ssh-keygen -q -t ed25519 -N "" -f "$home/ssh_host_ed25519_key"
  cat >"$home/sshd_config" <<CONFIG
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
CONFIG
  ip netns add "$ns"
  ip link add "pc$slot-v$i" type veth peer name eth0 netns "$ns"
  ip link set "pc$slot-v$i" master "pc$slot-br" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  # sshd (and all it starts: wg-quick, wireguard-go, the K3s scripts) sees only this host's folders.
  ip netns exec "$ns" unshare --mount --propagation private sh -c "
    mount --bind '$home/etc-wireguard' /etc/wireguard &&
    mount --bind '$home/run-wireguard' /run/wireguard &&
    mount --bind '$home/etc-rancher-k3s' /etc/rancher/k3s &&
    mount --bind '$home/var-lib-peoples-cloud' /var/lib/peoples-cloud &&
    exec /usr/sbin/sshd -D -e -f '$home/sshd_config'" >"$home/sshd.log" 2>&1 &
  printf '{"name": "node-%s", "address": "%s", "namespace": "%s", "home": "%s"}' "$i" "$addr" "$ns" "$home"
}

wait_for_sshd() { # namespace, address, log
  for _ in $(seq 1 50); do
    ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/22" 2>/dev/null && return 0
    sleep 0.1
  done
  die "sshd on $2 did not start: $(cat "$3")"
}

up() {
  local label=$1 count=$2 dir=$3 slot i hosts=()
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  command -v sshd >/dev/null || die "sshd missing: scripts/tools.sh host"
  # The mount points; what the hosts write goes to their own folders, not into these.
  mkdir -p "$dir" /etc/wireguard /run/wireguard /etc/rancher/k3s /var/lib/peoples-cloud /run/sshd
  slot=$(claim_slot "$PPID" "$dir")
  echo "$slot" >"$dir/slot"
  ssh-keygen -q -t ed25519 -N "" -C "testhosts-$label" -f "$dir/client_key"
  ip link add "pc$slot-br" type bridge
  ip addr add "198.18.$slot.1/24" dev "pc$slot-br"
  ip link set "pc$slot-br" up
  for i in $(seq 1 "$count"); do hosts+=("$(start_host "$slot" "$i" "$dir")"); done
  for i in $(seq 1 "$count"); do wait_for_sshd "pc$slot-h$i" "198.18.$slot.$((10 + i))" "$dir/h$i/sshd.log"; done
  (IFS=,; printf '{"bridge": "198.18.%s.1", "hosts": [%s]}\n' "$slot" "${hosts[*]}") >"$dir/hosts.json"
  echo "$dir/hosts.json"
}

down() {
  local dir=$1
  [ -f "$dir/slot" ] || { rm -rf "$dir"; return; }
  release_slot "$(cat "$dir/slot")" "$dir"
}

case ${1:-} in
  up) [ $# -eq 4 ] || die "usage: up LABEL COUNT DIR"; up "$2" "$3" "$4" ;;
  down) [ $# -eq 2 ] || die "usage: down DIR"; down "$2" ;;
  *) die "usage: $0 up LABEL COUNT DIR | down DIR" ;;
esac
