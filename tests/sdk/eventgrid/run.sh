#!/usr/bin/env bash
# The emulator's chat events through the official Event Grid parsers (events.md §8), against an
# already running emulator: the Python suite (azure-eventgrid 4.22.1, azure-core 1.41.0, the chat
# and identity SDKs driving chat) records every delivery to a loopback receiver and judges it; the
# JS check (js/, @azure/eventgrid 5.12.0) then parses the same raw bodies.
#
# Caller provides:
#   ACS_CONNECTION_STRING  endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
#   REQUESTS_CA_BUNDLE     emulator CA (requests, the sync SDK clients)
# Optional:
#   ACS_REFERENCE_DIR      reference material with eventgrid/ (default: <repo>/../shared/reference);
#                          required when CI=true
#   VENV                   virtualenv to create/reuse (default .venv-sdk-eventgrid, relative to the repo root)
#   PYTHON                 interpreter used to create the venv (default python3)
# Extra arguments are passed to pytest. Exits non-zero if either part fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"
cd "$repo_root"

venv="${VENV:-.venv-sdk-eventgrid}"
python="${PYTHON:-python3}"

if [ -z "${ACS_CONNECTION_STRING:-}" ]; then
    echo "run.sh: ACS_CONNECTION_STRING is not set; the tests will fail" >&2
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# pip without the emulator's CA variables, which would make it distrust PyPI (tests/sdk/python/run.sh).
env -u REQUESTS_CA_BUNDLE -u SSL_CERT_FILE -u CURL_CA_BUNDLE \
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The Python suite writes every delivery's raw body here for the JS parser.
export EVENTGRID_BODIES_FILE="$work/bodies.json"

export PYTHONDONTWRITEBYTECODE=1  # keep __pycache__ out of the repo
status=0
"$venv/bin/python" -m pytest -q -c "$here/pytest.ini" --rootdir "$here" "$here" "$@" || status=1

# The JS parser needs the bodies; without them its test fails (it never passes on nothing).
(cd "$here/js" && bash run.sh) || status=1
exit "$status"
