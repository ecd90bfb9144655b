#!/usr/bin/env bash
# The recorded deliveries (EVENTGRID_BODIES_FILE, written by the Python suite beside) through
# @azure/eventgrid 5.12.0. Installs the pinned packages (npm ci) when node_modules is missing or
# older than the lockfile (as tests/sdk/js/run.sh), then runs node --test; exits with its status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

installed=node_modules/.package-lock.json
if [[ ! -f "$installed" || package-lock.json -nt "$installed" || package.json -nt "$installed" ]]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

status=0
node --test --test-timeout=60000 ./*.test.mjs || status=$?
exit "$status"
