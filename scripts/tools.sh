#!/usr/bin/env bash
# Provides every outside tool the tests and the main job need, from the npm registry, the Go module proxy and
# Debian's archive only. Go programs are built from the small wrapper modules in tools/go/<name>/ (each pins
# the upstream module and copies its replace lines), once per wrapper hash, into a cache outside the repo.
#
#   scripts/tools.sh [TIER...]            build or find the tools of these tiers (default: all)
#   scripts/tools.sh --bin-dir [TIER...]  print a bin/ directory with the tools of these tiers, building nothing
#
# Tiers: engine (Pulumi CLI, policy-pack shim), servers (OpenBao, MinIO), clients (rclone, a real S3 client
# for the storage service's tests), host (Debian's WireGuard, sshd, iproute2, ShellCheck, and the AWS CLI for
# the storage service's tests). A tool already on PATH at the pinned version is used as it is.
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
  "rclone|tools/go/rclone|github.com/rclone/rclone|github.com/rclone/rclone||-X github.com/rclone/rclone/fs.Version=%V"
)
tier_of() {
  case $1 in
    pulumi) echo engine ;;
    bao | minio) echo servers ;;
    rclone) echo clients ;;
  esac
}
debian_packages=(wireguard-tools wireguard-go openssh-server iproute2 iputils-ping shellcheck awscli)

field() { local IFS='|'; read -r -a parts <<<"$1"; echo "${parts[$2]:-}"; }

module_version() { # wrapper dir, module path -> version pinned in the wrapper's go.mod
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$repo/$1/go.mod"
}

tool_key() { # spec -> cache key: wrapper go.mod + go.sum + build recipe + Go version
  { cat "$repo/$(field "$1" 1)/go.mod" "$repo/$(field "$1" 1)/go.sum"; echo "$1"; go env GOVERSION; } |
    sha256sum | cut -c1-12
}

tool_dir() { # spec -> where its binary lives in the cache
  local spec=$1 name version
  name=$(field "$spec" 0)
  version=$(module_version "$(field "$spec" 1)" "$(field "$spec" 3)")
  echo "$cache/$name/${version}-$(tool_key "$spec")"
}

on_path_at_version() { # name, version -> path of a tool on PATH that reports exactly this version
  local path
  path=$(command -v "$1" 2>/dev/null) || return 1
  case $1 in
    pulumi) [ "$("$path" version 2>/dev/null)" = "$2" ] ;;
    bao) "$path" version 2>/dev/null | grep -qE "^OpenBao v${2#v}( |$)" ;;
    *) return 1 ;; # MinIO's pseudo-version is not in its own version output; always use the pinned build
  esac && echo "$path"
}

build_go_tool() {
  local spec=$1 name wrapper pkg version tags ldflags dir started tmp
  name=$(field "$spec" 0)
  wrapper=$(field "$spec" 1)
  pkg=$(field "$spec" 2)
  version=$(module_version "$wrapper" "$(field "$spec" 3)")
  tags=$(field "$spec" 4)
  ldflags="-s -w $(field "$spec" 5)"
  ldflags=${ldflags//%V/$version}
  ldflags=${ldflags//%N/${version#v}}
  dir=$(tool_dir "$spec")
  if [ -x "$dir/$name" ]; then
    log "$name $version: cached in $dir"
    return
  fi
  if path=$(on_path_at_version "$name" "$version"); then
    mkdir -p "$dir" && ln -sf "$path" "$dir/$name"
    log "$name $version: using $path from PATH"
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

bin_dir() { # a directory of links to every tool of the asked tiers; fails if one is not built
  local links spec name dir key=""
  for spec in "${go_tools[@]}"; do wanted "$(tier_of "$(field "$spec" 0)")" && key+=$(tool_dir "$spec"); done
  links="$cache/bin/$(echo "$key$repo" | sha256sum | cut -c1-12)/bin"
  mkdir -p "$links"
  for spec in "${go_tools[@]}"; do
    name=$(field "$spec" 0)
    wanted "$(tier_of "$name")" || continue
    dir=$(tool_dir "$spec")
    [ -x "$dir/$name" ] || die "$name is not built yet; run: scripts/tools.sh $(tier_of "$name")"
    ln -sfn "$dir/$name" "$links/$name"
  done
  if wanted engine; then
    # Without the Go-built Node.js language host, the engine starts Node.js policy packs through this shim,
    ln -sfn "$repo/scripts/bin/pulumi-analyzer-policy-nodejs" "$links/pulumi-analyzer-policy-nodejs"
    # and looks for the dynamic-provider plugin, which @pulumi/pulumi ships, next to itself.
    ln -sfn "$repo/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs" "$links/pulumi-resource-pulumi-nodejs"
  fi
  echo "$links"
}

print_bin_dir=false
tiers=()
for arg in "$@"; do
  case $arg in
    --bin-dir) print_bin_dir=true ;;
    engine | servers | clients | host | all) tiers+=("$arg") ;;
    *) die "unknown argument '$arg' (tiers: engine servers clients host all; option: --bin-dir)" ;;
  esac
done
[ ${#tiers[@]} -gt 0 ] || tiers=(all)

if $print_bin_dir; then
  bin_dir
  exit 0
fi

started=$(date +%s)
wanted host && ensure_debian_packages
for spec in "${go_tools[@]}"; do
  wanted "$(tier_of "$(field "$spec" 0)")" && build_go_tool "$spec"
done
log "ready in $(($(date +%s) - started))s: $(bin_dir)"
