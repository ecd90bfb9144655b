#!/usr/bin/env bash
# Run the 2020 quickstart (azure-communication-chat 1.0.0b2 + azure-communication-administration
# 1.0.0b4, i.e. Chat api-version 2020-09-21-preview2 and Identity 2020-07-20-preview2) against an
# already running emulator.
#
# Caller provides:
#   ACS_CONNECTION_STRING  endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
#   REQUESTS_CA_BUNDLE     emulator CA (the sync clients use requests)
#   SSL_CERT_FILE          emulator CA (set it too; harmless for the sync clients)
# Optional:
#   VENV     virtualenv to create/reuse (default .venv-sdk-preview2, relative to the repo root)
#   PYTHON   interpreter used to create the venv (default python3)
# Extra arguments are passed to pytest. Exits with pytest's exit code.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"
cd "$repo_root"

venv="${VENV:-.venv-sdk-preview2}"
python="${PYTHON:-python3}"

if [ -z "${ACS_CONNECTION_STRING:-}" ]; then
    echo "run.sh: ACS_CONNECTION_STRING is not set; the tests will fail" >&2
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# REQUESTS_CA_BUNDLE / SSL_CERT_FILE point at the emulator's CA, which would make
# pip distrust PyPI (requests lets REQUESTS_CA_BUNDLE override PIP_CERT), so pip
# runs without them (it then uses PIP_CERT if set, else its bundled certifi).
env -u REQUESTS_CA_BUNDLE -u SSL_CERT_FILE -u CURL_CA_BUNDLE \
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

export PYTHONDONTWRITEBYTECODE=1  # keep __pycache__ out of the repo
set +e
"$venv/bin/python" -m pytest -q -c "$here/pytest.ini" --rootdir "$here" "$here" "$@"
status=$?
set -e
exit "$status"
