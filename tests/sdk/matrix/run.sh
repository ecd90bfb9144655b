#!/usr/bin/env bash
# Version matrix: the same short chat scenario through several released versions of the official
# Python and JavaScript Chat SDKs (one per api-version they send), against an ALREADY running
# emulator. See README.md in this folder for the versions.
#
# Caller provides (as for tests/sdk/python/run.sh and tests/sdk/js/run.sh):
#   ACS_CONNECTION_STRING  endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
#   REQUESTS_CA_BUNDLE     emulator CA (Python sync clients)
#   SSL_CERT_FILE          emulator CA (Python aio clients; unused here but kept consistent)
#   NODE_EXTRA_CA_CERTS    emulator CA (Node.js)
# Optional:
#   PYTHON                 interpreter for the venvs (default python3; the pins were made on 3.11)
#   arguments              only run the entries whose "<sdk> <version>" matches one of them
#                          (grep -E), e.g.  run.sh python   run.sh 'js 1\.6'
#
# Installs each version once (Python: .venv-matrix/<version>/ at the repo root, pip with the CA
# variables unset; JS: npm ci in js/<version>/ when its node_modules is stale), runs the scenario
# for every version, prints one line per version and then "matrix: N passed, M failed".
# Exits non-zero if any version failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-python3}"

# sdk  version  chat-api-version  identity-api-version  (verified in README.md)
matrix=(
  "python 1.0.0 2021-03-07 2021-03-07"
  "python 1.1.0 2021-09-07 2022-06-01"
  "python 1.2.0 2023-11-07 2022-10-01"
  "python 1.3.0 2024-03-07 2023-10-01"
  "js 1.0.1 2021-03-07 2021-03-07"
  "js 1.3.2 2021-09-07 2022-06-01"
  "js 1.4.0 2023-11-07 2022-10-01"
  "js 1.5.4 2024-03-07 2023-10-01"
  "js 1.6.0 2025-03-15 2023-10-01"
)

for name in ACS_CONNECTION_STRING REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS; do
  if [[ -z "${!name:-}" ]]; then
    echo "run.sh: $name is not set; the scenarios will fail" >&2
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PYTHONDONTWRITEBYTECODE=1 # keep __pycache__ out of the repo

selected() { # entry [pattern...]: no pattern selects everything
  local entry="$1"
  shift
  (($# == 0)) && return 0
  for pattern in "$@"; do
    grep -Eq -- "$pattern" <<<"$entry" && return 0
  done
  return 1
}

install_python() { # version log
  local version="$1" log="$2"
  local venv="$repo_root/.venv-matrix/$version" requirements="$here/python/requirements-$version.txt"
  if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" >>"$log" 2>&1 || return 1
  fi
  # Reinstall only when the pinned list changed since the last successful install.
  if ! cmp -s "$requirements" "$venv/.matrix-requirements.txt"; then
    # The CA variables point at the emulator's CA, which would make pip distrust PyPI.
    env -u REQUESTS_CA_BUNDLE -u SSL_CERT_FILE -u CURL_CA_BUNDLE \
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >>"$log" 2>&1 ||
      return 1
    cp "$requirements" "$venv/.matrix-requirements.txt"
  fi
}

install_js() { # version log
  local dir="$here/js/$1" log="$2"
  local installed="$dir/node_modules/.package-lock.json"
  if [[ ! -f "$installed" || "$dir/package-lock.json" -nt "$installed" || "$dir/package.json" -nt "$installed" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >>"$log" 2>&1 || return 1
  fi
}

run_python() { # version chat-api identity-api log observed
  MATRIX_CHAT_API_VERSION="$2" MATRIX_IDENTITY_API_VERSION="$3" \
    timeout 300 "$repo_root/.venv-matrix/$1/bin/python" "$here/python/scenario.py" >>"$4" 2>&1
  local status=$?
  sed -n 's/^observed //p' "$4" | tail -n 1 >"$5"
  return "$status"
}

run_js() { # version chat-api identity-api log observed
  MATRIX_SDK_DIR="$here/js/$1" MATRIX_CHAT_API_VERSION="$2" MATRIX_IDENTITY_API_VERSION="$3" \
    MATRIX_OBSERVED_FILE="$5" \
    timeout 300 node --test --test-reporter=spec --test-timeout=60000 "$here/js/scenario.test.mjs" >>"$4" 2>&1
}

passed=0
failed=0
for entry in "${matrix[@]}"; do
  read -r sdk version chat_api identity_api <<<"$entry"
  selected "$sdk $version" "$@" || continue
  log="$work/$sdk-$version.log"
  observed="$work/$sdk-$version.observed"
  : >"$log"
  : >"$observed"

  status=0
  if ! "install_$sdk" "$version" "$log"; then
    echo "install of $sdk $version failed" >>"$log"
    status=1
  elif ! "run_$sdk" "$version" "$chat_api" "$identity_api" "$log" "$observed"; then
    status=1
  fi

  # The api-version the SDK really sent (observed on the wire), else the expected one.
  sent="$(sed -n 's/.*chat-api-version=\([^ ]*\).*/\1/p' "$observed")"
  [[ -z "$sent" || "$sent" == none ]] && sent="$chat_api"
  if ((status == 0)); then
    passed=$((passed + 1))
    echo "$sdk $version api-version=$sent: pass"
  else
    failed=$((failed + 1))
    echo "$sdk $version api-version=$sent: fail"
    sed 's/^/    | /' "$log"
  fi
done

if ((passed + failed == 0)); then
  echo "run.sh: no matrix entry matches: $*" >&2
  exit 2
fi
echo
echo "matrix: $passed passed, $failed failed"
((failed == 0))
