#!/usr/bin/env bash
# Sourced by main.sh and test.sh, the README's two commands, with the tiers they need: builds or finds the
# tools of those tiers and Node.js of the project's line (the tools cache's when the machine's is older), puts
# them first on PATH, then installs the npm dependencies on that Node.js when package-lock.json changed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$repo/scripts/tools.sh" "$@"
PATH="$(bash "$repo/scripts/tools.sh" --bin-dir "$@"):$PATH"
export PATH

stamp="$repo/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$repo/package-lock.json" -nt "$stamp" ]; then
  echo "setup: npm ci (Node.js $(node --version))" >&2
  # No install scripts: provider SDKs' scripts try to download plugins, which tools.sh builds instead.
  (cd "$repo" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
