#!/usr/bin/env bash
# Runs the official-JS-SDK end-to-end tests against an emulator that is ALREADY running.
#
# The caller provides:
#   ACS_CONNECTION_STRING  endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
#   NODE_EXTRA_CA_CERTS    the emulator's CA certificate (<data-dir>/ca.pem)
# Without ACS_CONNECTION_STRING every test fails (none is skipped).
#
# Installs the pinned packages (npm ci) when node_modules is missing or older than the lockfile,
# then runs `node --test` on the *.test.mjs files and exits with its status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ -z "${ACS_CONNECTION_STRING:-}" ]]; then
  echo "run.sh: ACS_CONNECTION_STRING is not set; the tests will fail." >&2
fi
if [[ -z "${NODE_EXTRA_CA_CERTS:-}" ]]; then
  echo "run.sh: NODE_EXTRA_CA_CERTS is not set; TLS to the emulator will fail unless its CA is trusted otherwise." >&2
fi

# npm writes node_modules/.package-lock.json on every install: older than the lockfile or
# package.json means stale.
installed=node_modules/.package-lock.json
if [[ ! -f "$installed" || package-lock.json -nt "$installed" || package.json -nt "$installed" ]]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

shopt -s nullglob
tests=(./*.test.mjs)
if (( ${#tests[@]} == 0 )); then
  echo "run.sh: no *.test.mjs files found" >&2
  exit 1
fi

status=0
node --test --test-timeout=60000 "${tests[@]}" || status=$?
exit "$status"
