#!/usr/bin/env bash
# The mark of this machine's installation, which reinstalling the machine wipes: prints its generation, or
# nothing when there is no mark (a new or reinstalled machine). With INSTALLATION_GENERATION set, writes that
# generation first. Prints nothing secret.
set -euo pipefail
dir=/var/lib/peoples-cloud
mark=$dir/installation
if [ -n "${INSTALLATION_GENERATION:-}" ]; then
    mkdir -p "$dir"
    # Renamed into place: a run cut short leaves the old mark or none, never half a number.
    echo "$INSTALLATION_GENERATION" >"$mark.tmp"
    mv "$mark.tmp" "$mark"
fi
if [ -f "$mark" ]; then cat "$mark"; fi
