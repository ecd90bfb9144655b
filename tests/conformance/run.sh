#!/usr/bin/env bash
# Conformance check against an already running emulator: replay the recorded real-service
# exchanges and the specs' x-ms-examples, compare, write a report (see README.md).
#
# Caller provides:
#   ACS_CONNECTION_STRING  endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
#   REQUESTS_CA_BUNDLE     emulator CA (or SSL_CERT_FILE)
# Optional:
#   ACS_REFERENCE_DIR      recordings + specs (default: <repo>/../shared/reference)
#   CONFORMANCE_REPORT     where to write the markdown report (default: a new temp dir, printed)
#   PYTHON                 interpreter (default python3; 3.11+, standard library only)
# Extra arguments are passed to conformance.py (e.g. --only 'android/*' -v).
# Exits with the script's code: 0 all exchanges match or diverge deliberately, 1 undocumented
# divergences, 2 emulator unreachable or inputs missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

if [ -z "${ACS_CONNECTION_STRING:-}" ]; then
    echo "run.sh: ACS_CONNECTION_STRING is not set" >&2
fi

# The recordings and specs are the project's reference material (shared/, beside the repository
# here and in CI), not part of the repository. Outside this workplace they may be missing: say so
# plainly and do not count it as a pass or a failure; in CI (CI=true) they are required.
reference="${ACS_REFERENCE_DIR:-$here/../../../shared/reference}"
if [ ! -d "$reference" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "run.sh: reference material not found at $reference (set ACS_REFERENCE_DIR)" >&2
        exit 2
    fi
    echo "conformance: NOT RUN: reference material not found at $reference (set ACS_REFERENCE_DIR)"
    exit 0
fi

args=()
if [ -n "${CONFORMANCE_REPORT:-}" ]; then
    args+=(--report "$CONFORMANCE_REPORT")
fi

export PYTHONDONTWRITEBYTECODE=1  # keep __pycache__ out of the repo
set +e
"$python" "$here/conformance.py" "${args[@]}" "$@"
status=$?
set -e
exit "$status"
