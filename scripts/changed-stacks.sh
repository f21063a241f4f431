#!/usr/bin/env bash
# The families' stacks a change touches, as a JSON array (a workflow's matrix): every family stack when the
# change can alter any plan (the program, its components, lib, config schema, policy pack, dependencies), else
# the stacks whose own Pulumi.<family>.yaml changed. A family stack is a Pulumi.<family>.yaml with the
# passphrase's salt, as `peoples-cloud new` writes it; Pulumi.dev.yaml and Pulumi.prod.yaml are examples.
#
#   scripts/changed-stacks.sh BASE HEAD    (BASE all zeros, as for a new branch: every family stack)
set -euo pipefail
base=${1:?usage: changed-stacks.sh BASE HEAD}
head=${2:?usage: changed-stacks.sh BASE HEAD}

family_stacks() {
  local file
  git ls-tree --name-only "$head" | grep -E '^Pulumi\.[a-z][a-z0-9-]*\.yaml$' | while read -r file; do
    if git show "$head:$file" | grep -q '^encryptionsalt:'; then
      file=${file#Pulumi.}
      echo "${file%.yaml}"
    fi
  done
}

every=false
touched=()
if [[ $base =~ ^0+$ ]]; then
  every=true
else
  while read -r file; do
    case $file in
      "") ;;
      Pulumi.yaml) every=true ;;
      Pulumi.*.yaml) touched+=("$(basename "${file#Pulumi.}" .yaml)") ;;
      # What cannot change a plan: documentation, the services (their images are pinned in the program), tests.
      *.md | services/* | tests/* | .ci/* | .github/workflows/images.yml) ;;
      *) every=true ;;
    esac
  done < <(git diff --name-only "$base" "$head")
fi

stacks=()
while read -r stack; do
  [ -n "$stack" ] || continue
  if $every || [[ " ${touched[*]} " == *" $stack "* ]]; then stacks+=("\"$stack\""); fi
done < <(family_stacks | sort)
(IFS=,; echo "[${stacks[*]}]")
