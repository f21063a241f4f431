#!/usr/bin/env bash
# Provides every outside tool the tests and the main job need, from the npm registry, the Go module proxy and
# Debian's archive only. Go programs are built from the small wrapper modules in tools/go/<name>/ (each pins
# the upstream module and copies its replace lines), once per wrapper hash, into a cache outside the repo.
#
#   scripts/tools.sh [TIER...]            build or find the tools of these tiers (default: all)
#   scripts/tools.sh --bin-dir [TIER...]  print a bin/ directory with the tools of these tiers, building nothing
#
# Tiers: node (Node.js, when the machine's own is older; comes with every tier), engine (Pulumi CLI), servers
# (OpenBao, MinIO, SeaweedFS), clients (rclone, a real S3 client for the storage service's tests), host (Debian's
# WireGuard, sshd, iproute2, ShellCheck, and the AWS CLI and s3cmd for the storage service's tests; actionlint, which
# lint runs on .github/workflows; promtool, which tests the platform's alert rules). Node.js, the Pulumi
# CLI and OpenBao already on PATH are used as they are when at least the pinned version (Node.js: on its line).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PEOPLES_CLOUD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/peoples-cloud/tools}

log() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: FAILED: %s\n' "$*" >&2; exit 1; }

# name | wrapper dir | main package | version module (its version in go.mod is the tool's) | build tags | ldflags
# (%V is replaced by that version, %N by the version without its leading v).
go_tools=(
  "pulumi|tools/go/pulumi|github.com/pulumi/pulumi/pkg/v3/cmd/pulumi|github.com/pulumi/pulumi/pkg/v3|osusergo,grpcnotrace|-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=%V"
  "bao|tools/go/openbao|github.com/openbao/openbao|github.com/openbao/openbao/sdk/v2||-X github.com/openbao/openbao/version.fullVersion=%N"
  "minio|tools/go/minio|github.com/minio/minio|github.com/minio/minio||"
  "weed|tools/go/seaweedfs|github.com/seaweedfs/seaweedfs/weed|github.com/seaweedfs/seaweedfs||-X github.com/seaweedfs/seaweedfs/weed/util/version.COMMIT=%V"
  "rclone|tools/go/rclone|github.com/rclone/rclone|github.com/rclone/rclone||-X github.com/rclone/rclone/fs.Version=%V"
  "actionlint|tools/go/actionlint|github.com/rhysd/actionlint/cmd/actionlint|github.com/rhysd/actionlint||"
  "promtool|tools/go/promtool|github.com/prometheus/prometheus/cmd/promtool|github.com/prometheus/prometheus||"
)
# Node.js from the npm registry's node-linux-<cpu> packages (the official binary as bin/node), pinned with
# each package's integrity. package.json's engines field names the same line.
node_version=26.12.1
declare -A node_integrity=(
  [x64]=sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==
  [arm64]=sha512-8Oxs6Y7rDcKufVIM/zYRSwytj46WOrZk7yFCLTKDcs17bBjAeD9HMAqo97hMfMyxozIud0S4vZCs5WB/3iavNQ==
)

tier_of() {
  case $1 in
    pulumi) echo engine ;;
    bao | minio | weed) echo servers ;;
    rclone) echo clients ;;
    actionlint | promtool) echo host ;;
  esac
}
debian_packages=(wireguard-tools wireguard-go openssh-server iproute2 iputils-ping shellcheck awscli s3cmd)

field() { local IFS='|'; read -r -a parts <<<"$1"; echo "${parts[$2]:-}"; }

module_version() { # wrapper dir, module path -> version pinned in the wrapper's go.mod
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$repo/$1/go.mod"
}

# The Go toolchain's version, read from its GOROOT once: running `go` on every call (the launchers call
# --bin-dir each time) would cost a second and write Go's telemetry counters into the user's config folder.
go_version=
if command -v go >/dev/null; then
  go_version=$(head -n 1 "$(dirname "$(readlink -f "$(command -v go)")")/../VERSION" 2>/dev/null || go env GOVERSION)
fi

tool_key() { # spec -> cache key: wrapper go.mod + go.sum + build recipe + Go version
  { cat "$repo/$(field "$1" 1)/go.mod" "$repo/$(field "$1" 1)/go.sum"; echo "$1"; echo "$go_version"; } |
    sha256sum | cut -c1-12
}

tool_dir() { # spec -> where its binary lives in the cache
  echo "$cache/$(field "$1" 0)/$(tool_version "$1")-$(tool_key "$1")"
}

at_least() { # version, minimum (both with or without a leading v) -> whether version >= minimum
  [ "$(printf '%s\n%s\n' "${2#v}" "${1#v}" | sort -V | head -n 1)" = "${2#v}" ]
}

on_path_at_least() { # name, version -> real path of a tool on PATH at this version or newer
  local path found
  path=$(command -v "$1" 2>/dev/null) || return 1
  case $1 in
    pulumi) found=$("$path" version 2>/dev/null) ;;
    bao) found=$("$path" version 2>/dev/null | sed -nE 's/^OpenBao v([0-9][^ ]*).*/\1/p') ;;
    node) # on the pinned line only: a newer major is not the line the project is tested on
      found=$("$path" --version 2>/dev/null)
      [ "${found%%.*}" = "v${2%%.*}" ] || return 1
      ;;
    *) return 1 ;; # MinIO's and SeaweedFS's pseudo-versions are not in their version output; use the pinned build
  esac
  [[ $found =~ ^v?[0-9]+\.[0-9]+\.[0-9]+$ ]] && at_least "$found" "$2" && readlink -f "$path"
}

go_tool_path() { # spec -> the binary to use: the cached build, else one on PATH at least the pinned version
  local name dir
  name=$(field "$1" 0)
  dir=$(tool_dir "$1")
  if [ -x "$dir/$name" ]; then echo "$dir/$name"; else on_path_at_least "$name" "$(tool_version "$1")"; fi
}

tool_version() { # spec -> its pinned version
  module_version "$(field "$1" 1)" "$(field "$1" 3)"
}

node_cpu() {
  case $(uname -m) in
    x86_64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "node: no pinned Node.js for $(uname -m); install Node.js $node_version or newer on its line" ;;
  esac
}

node_dir() { echo "$cache/node/$node_version-$(node_cpu)"; }

node_path() { # the Node.js to use: the machine's when on the pinned line and not older, else the cached one
  on_path_at_least node "$node_version" || { [ -x "$(node_dir)/bin/node" ] && echo "$(node_dir)/bin/node"; }
}

ensure_node() {
  local path cpu dir tmp tgz integrity
  if path=$(on_path_at_least node "$node_version"); then
    log "node: using $path from PATH ($("$path" --version); pinned v$node_version)"
    return
  fi
  cpu=$(node_cpu)
  dir=$(node_dir)
  if [ -x "$dir/bin/node" ]; then
    log "node v$node_version: cached in $dir (the machine's is $(node --version 2>/dev/null || echo missing))"
    return
  fi
  command -v npm >/dev/null || die "node: npm is needed to fetch node-linux-$cpu@$node_version from the registry"
  log "node v$node_version: fetching node-linux-$cpu from the npm registry"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  tgz=$(cd "$tmp" && npm pack --silent "node-linux-$cpu@$node_version") || {
    rm -rf "$tmp"
    die "node: npm pack node-linux-$cpu@$node_version failed"
  }
  integrity="sha512-$(openssl dgst -sha512 -binary "$tmp/$tgz" | base64 -w0)"
  if [ "$integrity" != "${node_integrity[$cpu]}" ]; then
    rm -rf "$tmp"
    die "node: node-linux-$cpu@$node_version does not match its pinned integrity (got $integrity)"
  fi
  tar -xzf "$tmp/$tgz" -C "$tmp" package/bin/node && rm "$tmp/$tgz"
  [ "$("$tmp/package/bin/node" --version)" = "v$node_version" ] || {
    rm -rf "$tmp"
    die "node: the unpacked binary does not report v$node_version"
  }
  rm -rf "$dir" && mkdir -p "$dir" && mv "$tmp/package/bin" "$dir/bin" && rm -rf "$tmp"
  log "node v$node_version: installed in $dir"
}

build_go_tool() {
  local spec=$1 name wrapper pkg version tags ldflags dir started tmp
  name=$(field "$spec" 0)
  wrapper=$(field "$spec" 1)
  pkg=$(field "$spec" 2)
  version=$(tool_version "$spec")
  tags=$(field "$spec" 4)
  ldflags="-s -w $(field "$spec" 5)"
  ldflags=${ldflags//%V/$version}
  ldflags=${ldflags//%N/${version#v}}
  dir=$(tool_dir "$spec")
  if [ -x "$dir/$name" ]; then
    log "$name $version: cached in $dir"
    return
  fi
  if path=$(on_path_at_least "$name" "$version"); then
    log "$name: using $path from PATH ($("$path" version 2>/dev/null | head -n 1); pinned $version)"
    return
  fi
  command -v go >/dev/null || die "$name: Go is not installed (needed to build it from its module)"
  log "$name $version: building from $pkg (a cold build takes minutes; log in $dir.log)"
  started=$(date +%s)
  tmp="$dir.tmp.$$"
  mkdir -p "$tmp"
  if ! (cd "$repo/$wrapper" &&
    CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -buildvcs=false ${tags:+-tags "$tags"} \
      -ldflags "$ldflags" -o "$tmp/$name" "$pkg") >"$dir.log" 2>&1; then
    rm -rf "$tmp"
    die "$name $version: go build failed: $(grep -v '^go: downloading' "$dir.log" | tail -n 5 | tr '\n' ' ')"
  fi
  rm -rf "$dir" && mv "$tmp" "$dir"
  log "$name $version: built in $(($(date +%s) - started))s, $(du -sh "$dir/$name" | cut -f1)"
}

ensure_debian_packages() {
  local missing=() pkg
  for pkg in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "debian: ${debian_packages[*]} installed"
    return
  fi
  [ "$(id -u)" = 0 ] || die "debian: ${missing[*]} missing; install them with: sudo apt-get install ${missing[*]}"
  log "debian: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "debian: apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "debian: apt-get install ${missing[*]} failed"
}

wanted() { # tier -> whether it was asked for
  local t
  for t in "${tiers[@]}"; do [ "$t" = all ] || [ "$t" = "$1" ] && return 0; done
  return 1
}

bin_dir() { # a directory of links to every tool of the asked tiers; fails if one is missing
  local links spec name path key=""
  for spec in "${go_tools[@]}"; do wanted "$(tier_of "$(field "$spec" 0)")" && key+=$(tool_dir "$spec"); done
  links="$cache/bin/$(echo "$key$repo" | sha256sum | cut -c1-12)/bin"
  mkdir -p "$links"
  # Node.js comes with every tier: the engine's plugins, the tests and the services all run on it.
  path=$(node_path) || die "node v$node_version is not installed yet; run: scripts/tools.sh node"
  ln -sfn "$path" "$links/node"
  for spec in "${go_tools[@]}"; do
    name=$(field "$spec" 0)
    wanted "$(tier_of "$name")" || continue
    path=$(go_tool_path "$spec") || die "$name is not built yet; run: scripts/tools.sh $(tier_of "$name")"
    ln -sfn "$path" "$links/$name"
  done
  if wanted engine; then
    # The engine looks for the dynamic-provider plugin, which @pulumi/pulumi ships, next to itself.
    ln -sfn "$repo/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs" "$links/pulumi-resource-pulumi-nodejs"
  fi
  echo "$links"
}

print_bin_dir=false
tiers=()
for arg in "$@"; do
  case $arg in
    --bin-dir) print_bin_dir=true ;;
    node | engine | servers | clients | host | all) tiers+=("$arg") ;;
    *) die "unknown argument '$arg' (tiers: node engine servers clients host all; option: --bin-dir)" ;;
  esac
done
[ ${#tiers[@]} -gt 0 ] || tiers=(all)

if $print_bin_dir; then
  bin_dir
  exit 0
fi

started=$(date +%s)
wanted host && ensure_debian_packages
ensure_node
for spec in "${go_tools[@]}"; do
  wanted "$(tier_of "$(field "$spec" 0)")" && build_go_tool "$spec"
done
log "ready in $(($(date +%s) - started))s: $(bin_dir)"
