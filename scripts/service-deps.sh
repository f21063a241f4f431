#!/usr/bin/env bash
# A service's production dependencies as its image holds them: installed from the repository's lock, only
# what services/SERVICE/package.json names under "dependencies" and what those need — no other workspace's
# packages and none of the root's (@pulumi/*). The service's Dockerfile and its tests run this same script.
#
#   scripts/service-deps.sh SERVICE DEST
#
# installs them into DEST/node_modules and prints every package there (name@version, nested ones too). It
# reads only package.json, package-lock.json and services/SERVICE/package.json, and fails if the tree holds
# an @pulumi/* package.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage="usage: scripts/service-deps.sh SERVICE DEST"
service=${1:?$usage}
dest=${2:?$usage}
[ -f "$root/services/$service/package.json" ] || { echo "service-deps: no services/$service/package.json" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/services/$service"
cp "$root/package.json" "$root/package-lock.json" "$work/"
cp "$root/services/$service/package.json" "$work/services/$service/"
# npm's --omit=dev reads the lock's dev flags, which are the whole repository's: a service's test tool that
# the root needs at run time (typescript, js-yaml for @pulumi/pulumi) would come along. Without the service's
# devDependencies, in its package.json and its lock entry alike, npm installs only what its dependencies need.
# shellcheck disable=SC2016 # JavaScript in single quotes
(cd "$work" && node -e '
const fs = require("fs");
const [dir] = process.argv.slice(1);
const edit = (file, change) => fs.writeFileSync(file, JSON.stringify(change(JSON.parse(fs.readFileSync(file, "utf8")))));
edit(`${dir}/package.json`, (p) => ({ ...p, devDependencies: undefined }));
edit("package-lock.json", (lock) => ({ ...lock, packages: { ...lock.packages, [dir]: { ...lock.packages[dir], devDependencies: undefined } } }));
' "services/$service")
(cd "$work" && npm ci --omit=dev --workspace "@peoples-cloud/$service" \
  --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
if [ -d "$work/services/$service/node_modules" ]; then
  echo "service-deps: FAILED: npm installed some of $service's dependencies apart from the others, at versions" \
    "other than the root's: $(ls "$work/services/$service/node_modules"); align them in package-lock.json" >&2
  exit 1
fi
# npm links the workspace itself in; the image holds its compiled code instead.
rm "$work/node_modules/@peoples-cloud/$service"
rmdir --ignore-fail-on-non-empty "$work/node_modules/@peoples-cloud"

find "$work/node_modules" -regextype posix-extended \
  -regex '.*/node_modules/(@[^/]+/)?[^/@.][^/]*/package\.json' -print0 |
  xargs -0 node -e 'for (const f of process.argv.slice(1)) { const p = require(f); console.log(p.name + "@" + p.version); }' |
  sort -u >"$work/packages"
if grep '^@pulumi/' "$work/packages" >&2; then
  echo "service-deps: FAILED: $service's production dependencies hold the @pulumi/* packages above" >&2
  exit 1
fi

mkdir -p "$dest"
rm -rf "$dest/node_modules"
mv "$work/node_modules" "$dest/node_modules"
cat "$work/packages"
echo "service-deps: $service: $(wc -l <"$work/packages") packages, $(du -sh "$dest/node_modules" | cut -f1), no @pulumi/*" >&2
