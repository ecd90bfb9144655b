#!/usr/bin/env bash
# The one test command: every test of the project, from a fresh clone.
#
#   1. formatting and lints (cargo fmt --check, cargo clippy -D warnings);
#   2. Rust unit, store and HTTP-contract tests (cargo test), on the file-backed store users get;
#   3. the HTTP-contract suite (tests/api) again on the in-memory store (ACS_TEST_STORE=memory),
#      since --in-memory is a supported mode too;
#   4. the official Python and JavaScript SDKs, pinned (tests/sdk/*), against a running,
#      file-backed emulator over HTTPS, trusting its CA through the standard environment
#      variables only: our own scenarios (tests/sdk/python, tests/sdk/js) and the Python SDKs'
#      own e2e suites (tests/sdk/python-e2e);
#   5. the emulator's Event Grid deliveries through the official parsers and the swagger
#      (tests/sdk/eventgrid).
#
# Needs: a Rust toolchain, python3 with venv/pip, node and npm, and access to crates.io, PyPI and
# the npm registry for the first run. Exits non-zero if any step fails.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

step "cargo test"
cargo test --locked

step "cargo test --test api on the in-memory store (ACS_TEST_STORE=memory)"
ACS_TEST_STORE=memory cargo test --locked --test api

step "start the emulator for the SDK suites"
cargo build --locked --quiet
work="$(mktemp -d)"
log="$work/emulator.log"
# File-backed, as users run it: state goes to $work/data/emulator.db, removed at exit.
# --accept-entra-tokens: the identity SDKs' own e2e suites (tests/sdk/python-e2e) run their
# *_from_token_credential tests with Entra-shaped tokens from a local stand-in (entra.py).
./target/debug/acs-chat-emulator --data-dir "$work/data" \
    --https-port 0 --http-port 0 --bind 127.0.0.1 --accept-entra-tokens >"$log" 2>&1 &
emulator=$!
cleanup() {
    kill "$emulator" 2>/dev/null || true
    wait "$emulator" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The banner names the ports chosen; wait for it (the listeners are bound before it prints).
for _ in $(seq 1 100); do
    grep -q "connection string:" "$log" && break
    kill -0 "$emulator" 2>/dev/null || { cat "$log"; echo "the emulator exited early" >&2; exit 1; }
    sleep 0.1
done
connection_string="$(sed -n 's/^ *connection string: *//p' "$log")"
[ -n "$connection_string" ] || { cat "$log"; echo "no connection string in the banner" >&2; exit 1; }
echo "$connection_string"

export ACS_CONNECTION_STRING="$connection_string"
export REQUESTS_CA_BUNDLE="$work/data/ca.pem" SSL_CERT_FILE="$work/data/ca.pem" NODE_EXTRA_CA_CERTS="$work/data/ca.pem"
# For tests that start a second emulator of their own (e.g. with --throttle) on the same CA: the
# second reads ca.pem and ca-key.pem from this dir and runs --in-memory, so it never opens this
# emulator's emulator.db (tests/sdk/python/test_emulator_faults.py).
export EMULATOR_BIN="$repo/target/debug/acs-chat-emulator" EMULATOR_DATA_DIR="$work/data"

status=0
step "official Python SDK (azure-communication-chat 1.3.0, azure-communication-identity 1.5.0)"
bash tests/sdk/python/run.sh || status=1

step "the Python SDKs' own test suites (tests/ of the azure-communication-chat 1.3.0 and -identity 1.5.0 sdists), live against the emulator"
bash tests/sdk/python-e2e/run.sh || status=1

step "official JavaScript SDK (@azure/communication-chat 1.6.0, @azure/communication-identity 1.3.1)"
bash tests/sdk/js/run.sh || status=1

step "the 2020 SDKs (azure-communication-chat 1.0.0b2, -administration 1.0.0b4): the seed quickstart"
bash tests/sdk/preview2/run.sh || status=1

step "official SDK version matrix (Python chat 1.0.0-1.3.0, JS chat 1.0.1-1.6.0: every Chat api-version)"
bash tests/sdk/matrix/run.sh || status=1

step "Event Grid events through the official parsers (azure-eventgrid 4.22.1, @azure/eventgrid 5.12.0) and the swagger"
bash tests/sdk/eventgrid/run.sh || status=1

step "conformance: recorded service exchanges and spec examples replayed against the emulator"
CONFORMANCE_REPORT="$work/conformance-report.md" bash tests/conformance/run.sh || status=1

if [ "$status" -ne 0 ]; then
    echo "emulator log (last 50 lines):"
    tail -n 50 "$log"
fi
exit "$status"
