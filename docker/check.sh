#!/usr/bin/env bash
# Proves docker/ works on a machine where no image can be pulled (no registry reachable besides
# Debian's and the language package registries), with all container traffic on loopback.
#
#   sudo bash docker/check.sh [--rebuild-standins] [--purge] [-- PYTEST_ARGS...]
#
# What it does:
#   1. installs docker.io, debootstrap and docker-compose with apt if they are missing;
#   2. starts a private dockerd with no bridge network (--bridge=none --iptables=false), its own
#      data root under the cache dir and its own socket, apart from any other Docker on the
#      machine, and stops it at the end;
#   3. makes local stand-ins for the public base images, once (cached as images, tagged
#      acs-emulator-check/*): a Debian 12 rootfs from debootstrap, plus this machine's Rust
#      toolchain for the builder, plus python3 + pip for the example app, and a distroless-like
#      runtime made of the same files as gcr.io/distroless/cc-debian12 (glibc, libgcc, libstdc++,
#      libssl, ca-certificates, tzdata; uid 65532; no shell);
#   4. docker build --network host of docker/Dockerfile with those stand-ins as build args;
#   5. runs the image with --network host, waits for `docker inspect` health to be healthy, checks
#      the user, HTTPS with the served CA, runs the official Python SDK suite against it, restarts
#      it and checks state and CA survive in the named volume;
#   6. runs docker/compose.yaml with the docker/compose.check.yaml override (network_mode: host):
#      the emulator turns healthy, the example app starts after it and reaches it by service name
#      over HTTPS;
#   7. prints a summary with the image size, removes its containers and volumes (the images and
#      the build cache stay in the private data root, for the next run).
# Needs root, apt, and a few minutes (the first run builds the stand-ins and compiles the crate).
#
# Environment:
#   ACS_CHECK_CACHE       engine data root, debootstrap tarball, SDK venv and logs
#                         (default /var/cache/acs-emulator-docker-check)
#   DOCKER_BUILDKIT=1     build with BuildKit instead of the classic builder (needs a docker CLI
#                         with BuildKit: buildx, or the 20.10 CLI of Debian's docker.io)
#   ACS_CHECK_HTTPS_PORT  loopback port of the emulator's HTTPS listener (default: first free from 28443)
#   ACS_CHECK_HTTP_PORT   loopback port of its HTTP listener (default: first free from 28080)
#   DEBIAN_MIRROR         debootstrap mirror (default http://deb.debian.org/debian)
# Options:
#   --rebuild-standins    rebuild the stand-in base images even if cached
#   --purge               remove everything this script made (its engine's data, cache) and exit
#   -- ARGS               passed to pytest instead of running the whole Python SDK suite
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"

cache="${ACS_CHECK_CACHE:-/var/cache/acs-emulator-docker-check}"
https_port="${ACS_CHECK_HTTPS_PORT:-}"
http_port="${ACS_CHECK_HTTP_PORT:-}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
standin_recipe=2 # bump when a stand-in recipe changes, so cached ones are rebuilt

image=acs-chat-emulator:local
app_image=acs-chat-emulator-example-app:local
runtime_standin=acs-emulator-check/distroless-cc:debian12-nonroot
python_standin=acs-emulator-check/python:3-bookworm
container=acs-emulator-check
volume=acs-emulator-check-data
project=acs-emulator-check

rebuild_standins=0
purge=0
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild-standins) rebuild_standins=1 ;;
        --purge) purge=1 ;;
        --) shift; pytest_args=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'check.sh: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (apt-get, dockerd, debootstrap)"
mkdir -p "$cache/logs"
logs="$cache/logs"

# ---------------------------------------------------------------------------------------------
step "tools"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    missing+=(docker-compose)
fi
if [ ${#missing[@]} -gt 0 ]; then
    note "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$logs/apt.log"
fi
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    compose=(docker-compose)
fi
note "$(docker --version), compose: ${compose[*]} $("${compose[@]}" version --short 2>/dev/null || true)"

# ---------------------------------------------------------------------------------------------
# A private engine: its own data root (images and build cache stay between runs, apart from any
# other Docker on the machine), exec root, socket and containerd namespace; no bridge network, so
# containers get none of their own and all traffic stays on the host's loopback (--network host).
engine_run=/run/acs-emulator-docker-check
export DOCKER_HOST="unix://$engine_run/docker.sock"
started_dockerd=""
compose_up=0
cleanup() {
    local status=$?
    set +e
    if [ "$compose_up" = 1 ]; then
        "${compose_cmd[@]}" down -v --remove-orphans >>"$logs/compose.log" 2>&1
    fi
    if [ -n "$started_dockerd" ]; then
        docker rm -f "$container" >/dev/null 2>&1
        docker volume rm "$volume" >/dev/null 2>&1
        stop_engine && printf '\n==> stopped the dockerd this script started (pid %s)\n' "$started_dockerd"
    fi
    rm -rf "$cache/work"
    exit "$status"
}
stop_engine() {
    kill "$started_dockerd" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 1; done
    if kill -0 "$started_dockerd" 2>/dev/null; then
        printf '\ncheck.sh: dockerd (pid %s) did not stop within 30s\n' "$started_dockerd" >&2
        return 1
    fi
    # What dockerd leaves mounted after a clean stop.
    for m in "$engine_run/exec/netns/default" "$cache/docker"; do
        if mountpoint -q "$m"; then umount "$m"; fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "docker engine"
if [ -s "$engine_run/docker.pid" ] && kill -0 "$(cat "$engine_run/docker.pid")" 2>/dev/null; then
    note "stopping the engine a previous run left (pid $(cat "$engine_run/docker.pid"))"
    kill "$(cat "$engine_run/docker.pid")"
    for _ in $(seq 1 30); do kill -0 "$(cat "$engine_run/docker.pid" 2>/dev/null)" 2>/dev/null || break; sleep 1; done
fi
mkdir -p "$engine_run" "$cache/docker"
dockerd --data-root "$cache/docker" --exec-root "$engine_run/exec" --pidfile "$engine_run/docker.pid" \
    --host "$DOCKER_HOST" --containerd-namespace acs-emulator-check \
    --containerd-plugins-namespace acs-emulator-check-plugins \
    --bridge=none --iptables=false --ip6tables=false >"$logs/dockerd.log" 2>&1 &
started_dockerd=$!
for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$started_dockerd" 2>/dev/null || break
    sleep 1
done
docker info >/dev/null 2>&1 || { tail -20 "$logs/dockerd.log" >&2; die "dockerd did not start (log: $logs/dockerd.log)"; }
note "dockerd $(docker version --format '{{.Server.Version}}') --bridge=none --iptables=false, pid $started_dockerd"
note "data root $cache/docker, socket $DOCKER_HOST, log $logs/dockerd.log"

if [ "$purge" = 1 ]; then
    step "purge"
    stop_engine || die "could not stop the engine"
    started_dockerd=""
    rm -rf "$cache" "$engine_run"
    note "removed $cache (images, build cache, logs) and $engine_run"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
step "stand-ins for the public base images (cached)"
rust_version="$(rustc -V 2>/dev/null | awk '{print $2}')" || true
[ -n "$rust_version" ] || die "no rustc on this machine to put in the builder stand-in"
rust_host="$(rustc -vV | sed -n 's/^host: //p')"
rust_sysroot="$(rustc --print sysroot)"
builder_standin="acs-emulator-check/rust:${rust_version}-${suite}"

have_standin() {
    [ "$rebuild_standins" = 0 ] &&
        [ "$(docker image inspect -f '{{index .Config.Labels "acs-emulator-check.recipe"}}' "$1" 2>/dev/null)" = "$standin_recipe" ]
}

base_tar="$cache/${suite}-minbase.tar"
base_fresh=0
base_rootfs() { # $1: work dir to fill with a fresh copy of the debootstrap rootfs
    if [ ! -s "$base_tar" ] || { [ "$rebuild_standins" = 1 ] && [ "$base_fresh" = 0 ]; }; then
        note "debootstrap --variant=minbase $suite ($mirror)"
        rm -rf "$cache/work/debootstrap"
        mkdir -p "$cache/work"
        debootstrap --variant=minbase "$suite" "$cache/work/debootstrap" "$mirror" >"$logs/debootstrap.log" 2>&1 ||
            die "debootstrap failed (log: $logs/debootstrap.log)"
        tar --numeric-owner -C "$cache/work/debootstrap" -cf "$base_tar.tmp" .
        mv "$base_tar.tmp" "$base_tar"
        rm -rf "$cache/work/debootstrap"
        base_fresh=1
    fi
    rm -rf "$1"
    mkdir -p "$1"
    tar --numeric-owner -C "$1" -xf "$base_tar"
}

chroot_apt() { # $1: rootfs, rest: packages
    local root="$1"
    shift
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" && apt-get clean' \
        apt "$@" >>"$logs/standins.log" 2>&1 || die "apt-get install $* in the stand-in failed (log: $logs/standins.log)"
    rm -rf "$root/var/lib/apt/lists/"*
    : >"$root/etc/resolv.conf"
}

# A stand-in that downloads (cargo from crates.io, pip from PyPI) trusts what this machine trusts,
# so it also works behind a TLS-inspecting proxy whose CA is only in the host's store.
host_trust() { # $1: rootfs
    [ -s /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"
    return 0
}

import_rootfs() { # $1: rootfs, $2: tag, rest: --change lines
    local root="$1" tag="$2"
    shift 2
    local changes=(--change "LABEL acs-emulator-check.recipe=$standin_recipe")
    for c in "$@"; do changes+=(--change "$c"); done
    tar --numeric-owner -C "$root" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
    rm -rf "$root"
    note "$tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}')"
}

std_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Builder: what rust:<version>-bookworm provides that the build uses: a C compiler and linker
# (ring and SQLite are compiled from C), CA certificates for crates.io, and the toolchain under
# /usr/local/rustup with cargo/rustc on PATH from /usr/local/cargo/bin.
if have_standin "$builder_standin"; then
    note "$builder_standin: cached"
else
    root="$cache/work/builder"
    base_rootfs "$root"
    chroot_apt "$root" gcc libc6-dev ca-certificates
    host_trust "$root"
    toolchain="/usr/local/rustup/toolchains/${rust_version}-${rust_host}"
    mkdir -p "$root$toolchain" "$root/usr/local/cargo/bin"
    for d in bin lib libexec etc; do # share/ (docs, ~800 MB) is not needed to build
        [ -d "$rust_sysroot/$d" ] && cp -a "$rust_sysroot/$d" "$root$toolchain/"
    done
    for b in cargo rustc rustdoc; do ln -s "$toolchain/bin/$b" "$root/usr/local/cargo/bin/$b"; done
    import_rootfs "$root" "$builder_standin" \
        "ENV RUSTUP_HOME=/usr/local/rustup" "ENV CARGO_HOME=/usr/local/cargo" \
        "ENV RUST_VERSION=$rust_version" "ENV PATH=/usr/local/cargo/bin:$std_path"
fi

# Runtime: the packages gcr.io/distroless/cc-debian12 is assembled from, unpacked with no
# package manager, shell or coreutils; passwd with root, nobody and nonroot (65532).
if have_standin "$runtime_standin"; then
    note "$runtime_standin: cached"
else
    root="$cache/work/runtime-src"
    base_rootfs "$root"
    chroot_apt "$root" ca-certificates libssl3 libgomp1 libstdc++6 libgcc-s1 netbase tzdata
    stage="$cache/work/runtime"
    rm -rf "$stage"
    mkdir -p "$stage/usr/bin" "$stage/usr/sbin" "$stage/usr/lib" "$stage/usr/lib64"
    for d in bin sbin lib lib64; do ln -s "usr/$d" "$stage/$d"; done
    for p in base-files netbase tzdata libc6 libgcc-s1 libgomp1 libstdc++6 libssl3; do
        cat "$root/var/lib/dpkg/info/$p.list" "$root/var/lib/dpkg/info/$p:amd64.list" 2>/dev/null || true
    done | sort -u | while IFS= read -r f; do
        case "$f" in
            /usr/share/doc/* | /usr/share/man/* | /usr/share/info/* | /usr/share/lintian/* | /usr/share/bug/*) continue ;;
        esac
        src="$root$f"
        { [ -e "$src" ] || [ -L "$src" ]; } || continue
        [ -d "$src" ] && [ ! -L "$src" ] && continue
        # /lib/... in a package list lives in /usr/lib on a merged-/usr system.
        dir="$(realpath "$(dirname "$src")")"
        dest="$stage${dir#"$root"}"
        mkdir -p "$dest"
        cp -a "$src" "$dest/"
    done
    mkdir -p "$stage/etc/ssl/certs" "$stage/tmp" "$stage/root" "$stage/home/nonroot"
    cp "$root/etc/ssl/certs/ca-certificates.crt" "$stage/etc/ssl/certs/"
    chmod 1777 "$stage/tmp"
    chmod 700 "$stage/root"
    chown 65532:65532 "$stage/home/nonroot"
    chmod 700 "$stage/home/nonroot"
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
        'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$stage/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$stage/etc/group"
    rm -rf "$root"
    import_rootfs "$stage" "$runtime_standin" \
        "USER 65532" "WORKDIR /home/nonroot" "ENV PATH=$std_path" \
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
fi

# Example app base: like python:3-slim, a python with pip on PATH (a venv, so pip installs
# without Debian's externally-managed guard).
if have_standin "$python_standin"; then
    note "$python_standin: cached"
else
    root="$cache/work/python"
    base_rootfs "$root"
    chroot_apt "$root" python3 python3-venv ca-certificates
    host_trust "$root"
    chroot "$root" /usr/bin/python3 -m venv /usr/local/python >>"$logs/standins.log" 2>&1 ||
        die "python3 -m venv in the stand-in failed (log: $logs/standins.log)"
    import_rootfs "$root" "$python_standin" "ENV PATH=/usr/local/python/bin:$std_path" \
        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
fi

# ---------------------------------------------------------------------------------------------
step "docker build --network host -f docker/Dockerfile (log: $logs/build.log)"
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" # the engine's classic builder: no buildx needed
build_args=(--force-rm --network host -f "$here/Dockerfile"
    --build-arg BUILDER_IMAGE="$builder_standin" --build-arg RUNTIME_IMAGE="$runtime_standin")
start=$SECONDS
# The builder stage gets a tag of its own, so the dependency layers it rests on stay cached
# while the previous runs' builds, now untagged, are pruned.
{ docker build "${build_args[@]}" --target builder -t acs-emulator-check/build-cache:latest "$repo_root" &&
    docker build "${build_args[@]}" -t "$image" "$repo_root"; } >"$logs/build.log" 2>&1 ||
    { tail -30 "$logs/build.log" >&2; die "docker build"; }
docker image prune -f >/dev/null
note "built $image in $((SECONDS - start))s"
image_bytes="$(docker image inspect -f '{{.Size}}' "$image")"
image_mb="$(awk -v b="$image_bytes" 'BEGIN{printf "%.1f", b/1e6}')"
runtime_mb="$(docker image inspect -f '{{.Size}}' "$runtime_standin" | awk '{printf "%.1f", $1/1e6}')"
note "image size: $image_mb MB (runtime base $runtime_mb MB + binary)"

# ---------------------------------------------------------------------------------------------
wait_healthy() { # $1: container; prints seconds waited
    local c="$1" t0=$SECONDS status state
    for _ in $(seq 1 120); do
        state="$(docker inspect -f '{{.State.Status}}' "$c")"
        status="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")"
        if [ "$status" = healthy ]; then echo "$((SECONDS - t0))"; return 0; fi
        if [ "$state" != running ] || [ "$status" = unhealthy ] || [ "$status" = none ]; then
            docker logs "$c" 2>&1 | tail -20 >&2
            docker inspect -f '{{json .State.Health}}' "$c" >&2
            die "container $c is $state, health $status"
        fi
        sleep 1
    done
    die "container $c not healthy after 120s"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "$https_port" ] || [ -z "$http_port" ]; then # the first free pair from 28443/28080 on
    for i in $(seq 0 50); do
        if ! port_in_use $((28443 + i)) && ! port_in_use $((28080 + i)); then
            https_port="${https_port:-$((28443 + i))}" http_port="${http_port:-$((28080 + i))}"
            break
        fi
    done
fi
step "docker run --network host (ports $https_port/$http_port on 127.0.0.1, volume $volume)"
for p in "$https_port" "$http_port"; do
    port_in_use "$p" && die "port $p is in use; set ACS_CHECK_HTTPS_PORT / ACS_CHECK_HTTP_PORT"
done
docker rm -f "$container" >/dev/null 2>&1 || true
docker volume rm "$volume" >/dev/null 2>&1 || true
docker run -d --name "$container" --network host \
    -e ACS_EMULATOR_BIND=127.0.0.1 -e ACS_EMULATOR_HTTPS_PORT="$https_port" -e ACS_EMULATOR_HTTP_PORT="$http_port" \
    -v "$volume:/data" "$image" >/dev/null
secs="$(wait_healthy "$container")"
health="$(docker inspect -f '{{.State.Health.Status}}' "$container")"
note "docker inspect health: $health after ${secs}s"
user="$(docker inspect -f '{{.Config.User}}' "$container")"
proc_uid="$(awk '/^Uid:/{print $2}' "/proc/$(docker inspect -f '{{.State.Pid}}' "$container")/status")"
note "image user: $user; process uid: $proc_uid"
[ "$proc_uid" != 0 ] || die "the emulator runs as root"

conn="$(docker logs "$container" 2>/dev/null | sed -n 's/^ *connection string: *//p' | head -1)"
[ -n "$conn" ] || die "no connection string in the container's banner"
ca="$cache/work/ca.pem"
mkdir -p "$cache/work"
curl -fsS "http://127.0.0.1:$http_port/_emulator/ca.pem" -o "$ca"
https_health="$(curl -fsS --cacert "$ca" "https://localhost:$https_port/_emulator/health")"
note "https://localhost:$https_port/_emulator/health with the served CA: $https_health"
ca_sum="$(sha256sum <"$ca" | cut -c1-16)"

step "official Python SDK suite against the container (log: $logs/sdk.log)"
if [ ${#pytest_args[@]} -eq 0 ]; then
    # Tests that start a second emulator from a local binary (EMULATOR_BIN) cannot run against a
    # container; everything else runs.
    pytest_args=(-k "not test_throttling_is_a_429_with_retry_after")
    note "deselected: test_throttling_is_a_429_with_retry_after (starts its own local emulator binary)"
fi
set +e
ACS_CONNECTION_STRING="$conn" REQUESTS_CA_BUNDLE="$ca" SSL_CERT_FILE="$ca" VENV="$cache/venv-sdk-py" \
    bash "$repo_root/tests/sdk/python/run.sh" "${pytest_args[@]}" >"$logs/sdk.log" 2>&1
sdk_status=$?
set -e
sdk_summary="$(grep -E '(passed|failed|error)' "$logs/sdk.log" | tail -1 | tr -d '=' | sed 's/^ *//; s/ *$//')"
note "${sdk_summary:-no pytest summary} (exit $sdk_status)"
[ "$sdk_status" = 0 ] || { tail -40 "$logs/sdk.log" >&2; die "SDK suite"; }

step "restart: state and CA kept in the named volume"
state_counts() { # identities and threads in /data/emulator.db, via the image's own `export`
    docker exec "$container" /usr/local/bin/acs-chat-emulator export |
        python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d["identities"]), "identities,", len(d["threads"]), "threads")'
}
before="$(state_counts)"
docker restart "$container" >/dev/null
secs="$(wait_healthy "$container")"
after="$(state_counts)"
curl -fsS "http://127.0.0.1:$http_port/_emulator/ca.pem" -o "$ca.after"
[ "$(sha256sum <"$ca.after" | cut -c1-16)" = "$ca_sum" ] || die "the CA changed across a restart"
if [ "$before" != "$after" ] || [ "${after%% *}" -eq 0 ]; then
    die "state before the restart ($before) is not the state after ($after)"
fi
note "healthy again after ${secs}s; same CA (sha256 $ca_sum); state kept: $after"
docker rm -f "$container" >/dev/null
docker volume rm "$volume" >/dev/null

# ---------------------------------------------------------------------------------------------
step "compose: docker/compose.yaml + docker/compose.check.yaml (log: $logs/compose.log)"
docker build --force-rm --network host --build-arg PYTHON_IMAGE="$python_standin" -t "$app_image" \
    "$here/example-app" >"$logs/app-build.log" 2>&1 || { tail -30 "$logs/app-build.log" >&2; die "example app build"; }
export ACS_CHECK_HTTPS_PORT="$https_port" ACS_CHECK_HTTP_PORT="$http_port"
# The merged configuration, minus `ports:`: a host-network container publishes nothing, and
# Compose refuses port bindings with network_mode: host (an override can only add to a list).
merged="$cache/work/compose.merged.yaml"
"${compose[@]}" -f "$here/compose.yaml" -f "$here/compose.check.yaml" config >"$merged.full"
awk '
    skip && (match($0, /^ */) && (RLENGTH > indent || (RLENGTH == indent && substr($0, RLENGTH + 1, 1) == "-"))) { next }
    { skip = 0 }
    /^ *ports: *$/ { skip = 1; match($0, /^ */); indent = RLENGTH; next }
    { print }
' "$merged.full" >"$merged"
grep -q 'network_mode: host' "$merged" || die "the check override did not apply"
compose_cmd=("${compose[@]}" -p "$project" -f "$merged")
"${compose_cmd[@]}" down -v --remove-orphans >"$logs/compose.log" 2>&1 || true
compose_up=1
"${compose_cmd[@]}" up -d --no-build >>"$logs/compose.log" 2>&1 || { tail -30 "$logs/compose.log" >&2; die "compose up"; }
emu_id="$("${compose_cmd[@]}" ps -q acs-emulator)"
app_id="$("${compose_cmd[@]}" ps -q app)"
compose_health="$(docker inspect -f '{{.State.Health.Status}}' "$emu_id")"
app_status="$(timeout 120 docker wait "$app_id")" || die "the example app did not finish in 120s"
"${compose_cmd[@]}" logs --no-color app >>"$logs/compose.log" 2>&1 || true
docker logs "$app_id" 2>&1 | sed 's/^/    app | /'
note "emulator health when the app started: $compose_health; now: $(docker inspect -f '{{.State.Health.Status}}' "$emu_id")"
note "app exit code: $app_status"
[ "$app_status" = 0 ] || die "the example app failed"
"${compose_cmd[@]}" down -v --remove-orphans >>"$logs/compose.log" 2>&1
compose_up=0
docker image prune -f >/dev/null

# ---------------------------------------------------------------------------------------------
step "summary"
note "image:       $image, $image_mb MB (builder $builder_standin, runtime $runtime_standin)"
note "health:      healthy (docker inspect), also after a restart; user $user, process uid $proc_uid"
note "SDK suite:   $sdk_summary"
note "compose:     emulator $compose_health before the app started; app exit $app_status"
echo "docker check: OK"
