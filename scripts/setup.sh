#!/usr/bin/env bash
# Installs the npm dependencies (when package-lock.json changed) and builds or finds the tools of the given tiers.
# Sourced by main.sh and test.sh, which are the README's two commands.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ensure_node_modules() {
  local stamp="$repo/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$repo/package-lock.json" -nt "$stamp" ]; then
    echo "setup: npm ci" >&2
    # No install scripts: provider SDKs' scripts try to download plugins, which tools.sh builds instead.
    (cd "$repo" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
}

ensure_node_modules
bash "$repo/scripts/tools.sh" "$@"
