#!/usr/bin/env bash
# Sourced by main.sh and test.sh, the README's two commands, with the tiers they need: puts Node.js of the
# project's line first on PATH (the tools cache's when the machine's is older), installs the npm dependencies
# when package-lock.json changed, builds or finds the tools of those tiers, and puts them on PATH too.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$repo/scripts/tools.sh" node
PATH="$(bash "$repo/scripts/tools.sh" --bin-dir node):$PATH"

stamp="$repo/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$repo/package-lock.json" -nt "$stamp" ]; then
  echo "setup: npm ci (Node.js $(node --version))" >&2
  # No install scripts: provider SDKs' scripts try to download plugins, which tools.sh builds instead.
  (cd "$repo" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

bash "$repo/scripts/tools.sh" "$@"
PATH="$(bash "$repo/scripts/tools.sh" --bin-dir "$@"):$PATH"
export PATH
