#!/usr/bin/env bash
# Run the official Python SDKs' OWN test suites (the tests/ folders shipped in the PyPI sdists of
# azure-communication-chat 1.3.0 and azure-communication-identity 1.5.0) in live mode against an
# already running emulator. The tests are used as published: never edited here.
#
# Caller provides:
#   ACS_CONNECTION_STRING  endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
#   REQUESTS_CA_BUNDLE     emulator CA (sync clients, requests)
#   SSL_CERT_FILE          emulator CA (async clients, aiohttp)
# Optional:
#   VENV     virtualenv to create/reuse (default .venv-sdk-e2e, relative to the repo root);
#            the downloaded sdists are kept in $VENV/sdk-e2e-cache
#   PYTHON   interpreter used to create the venv (default python3)
# Extra arguments are passed to pytest (it runs in $VENV/sdk-e2e-cache/src, so node ids read like
# the ones in deselected.txt, e.g. -k repeatability). Exits with pytest's exit code.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"
cd "$repo_root"

venv="${VENV:-.venv-sdk-e2e}"
python="${PYTHON:-python3}"

# The sdists whose tests/ are run, with their PyPI sha256.
sdists=(
    "azure-communication-chat==1.3.0 azure-communication-chat-1.3.0 e2f9fb766776ba041d80a58a2906957af0b8ec42d611f006c70c6367eedcb4b1"
    "azure-communication-identity==1.5.0 azure-communication-identity-1.5.0 d3186403395b78066ff30313ac119693694d2da9e0c76e9ac70eaa590dcb29e8"
)

if [ -z "${ACS_CONNECTION_STRING:-}" ]; then
    echo "run.sh: ACS_CONNECTION_STRING is not set; the live tests will fail" >&2
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
venv="$(cd "$venv" && pwd)"
cache="$venv/sdk-e2e-cache"
mkdir -p "$cache/dist"

# REQUESTS_CA_BUNDLE / SSL_CERT_FILE point at the emulator's CA, which would make pip distrust
# PyPI (requests lets REQUESTS_CA_BUNDLE override PIP_CERT), so pip runs without them.
pip_() {
    env -u REQUESTS_CA_BUNDLE -u SSL_CERT_FILE -u CURL_CA_BUNDLE \
        "$venv/bin/python" -m pip --disable-pip-version-check "$@"
}
pip_ install --quiet -r "$here/requirements.txt"

# Fetch (once) and unpack (every run, so the tests are exactly as published) each sdist's tests/.
rm -rf "$cache/src"
mkdir -p "$cache/src"
for entry in "${sdists[@]}"; do
    read -r spec name sha256 <<<"$entry"
    tarball="$cache/dist/$name.tar.gz"
    if [ ! -f "$tarball" ]; then
        pip_ download --quiet --no-deps --no-binary :all: --dest "$cache/dist" "$spec"
    fi
    if ! echo "$sha256  $tarball" | sha256sum --check --status; then
        echo "run.sh: $tarball does not have the expected sha256 $sha256" >&2
        rm -f "$tarball"
        exit 2
    fi
    tar -xzf "$tarball" -C "$cache/src" "$name/tests"
done

# Live mode, no recording: the tests call the emulator directly.
export AZURE_TEST_RUN_LIVE=true
export AZURE_SKIP_LIVE_RECORDING=true
export COMMUNICATION_LIVETEST_DYNAMIC_CONNECTION_STRING="${ACS_CONNECTION_STRING:-}"
export COMMUNICATION_LIVETEST_STATIC_CONNECTION_STRING="${ACS_CONNECTION_STRING:-}"
# The stand-in devtools_testutils and the deselect plugin.
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

cd "$cache/src"
set +e
"$venv/bin/python" -m pytest -q -c "$here/pytest.ini" --rootdir "$cache/src" \
    -p no:cacheprovider -p devtools_testutils -p deselect_by_name \
    --deselect-file "$here/deselected.txt" -rfE \
    azure-communication-chat-1.3.0/tests azure-communication-identity-1.5.0/tests \
    "$@"
status=$?
set -e
exit "$status"
