#!/usr/bin/env bash
# The main job: the real engine runs the program on a local file backend with the passphrase secrets
# provider; no cloud account. Usage: scripts/main.sh <preview|up|destroy> [--stack dev] [--policy-pack policy]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/scripts/setup.sh" engine
cd "$repo"
exec npx --no-install tsx scripts/run-stack.ts "$@"
