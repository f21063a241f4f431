#!/usr/bin/env bash
# The whole test suite from a fresh clone: dependencies, tools, lint, unit tests, then integration tests
# against the real engine and servers.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/scripts/setup.sh" all
echo "test: Node.js $(node --version), Pulumi CLI $(pulumi version)" >&2
cd "$repo"
npm run lint
npm run test:unit
npm run test:services
npm run test:integration
