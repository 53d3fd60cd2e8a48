#!/usr/bin/env bash
# Dockyard setup: Debian packages, the project venv, and a Redis on 127.0.0.1:6379.
# Idempotent and fast when everything is already in place. Run as root on Debian 12.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(dirname "$(dirname "$SELF")")"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (the worker needs namespaces, mounts, cgroups)"

# --------------------------------------------------------------------------- apt packages
# python3-venv: the project venv (Debian's python)      redis-server: broker + channel layer
# busybox-static: base images busybox:latest/1.29        chromium + fonts: browser tests
# nftables: port publishing (nft)                         tini: static init for --init
# docker.io: the real engine and CLI for interop tests and benchmarks
# docker-registry: a loopback OCI registry for pull/push tests    skopeo, umoci: interop tests
# iproute2, procps, util-linux, ca-certificates: inspection and probes used by tests/scripts
# libseccomp2: compiles seccomp profiles (workers/runtime/seccomp.py, via ctypes)
# git: builds from a git URL (docker build <git url>, the panel's build form)
PACKAGES=(
  python3 python3-venv
  redis-server
  busybox-static
  chromium fonts-dejavu-core fonts-liberation
  nftables
  tini
  docker.io
  docker-registry
  skopeo umoci
  iproute2 procps util-linux ca-certificates
  libseccomp2
  git
)

missing=()
for p in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
  [ "$status" = installed ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No init system here: keep package maintainer scripts from starting daemons
  # (dockerd, redis, registry). We start what we need ourselves.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  trap '[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  trap - EXIT
fi

# --------------------------------------------------------------------------- seccomp profile
# Docker's default seccomp profile, as Debian ships it in moby's source package
# (golang-github-docker-docker-dev, Apache-2.0). Only that one file is taken from the .deb:
# installing the package would pull in ~250 Go source packages.
SECCOMP_PROFILE=/usr/local/share/dockyard/docker-default-seccomp.json
if [ ! -s "$SECCOMP_PROFILE" ]; then
  log "extracting Docker's default seccomp profile to $SECCOMP_PROFILE"
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -q golang-github-docker-docker-dev >/dev/null 2>&1) || {
    apt-get update -q && (cd "$tmp" && apt-get download -q golang-github-docker-docker-dev); }
  dpkg-deb --fsys-tarfile "$tmp"/golang-github-docker-docker-dev_*.deb \
    | tar -x -C "$tmp" ./usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json
  install -D -m 0644 "$tmp/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json" \
    "$SECCOMP_PROFILE"
  rm -rf "$tmp"
fi

# --------------------------------------------------------------------------- venv
PY=/usr/bin/python3
[ -x "$PY" ] || die "$PY not found (Debian's python3 is required, not a pyenv one)"
VENV="$ROOT/.venv"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.base_prefix != "/usr")' 2>/dev/null; then
  log "recreating .venv (it was not made from $PY)"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating .venv with $PY"
  "$PY" -m venv "$VENV"
  rm -f "$VENV/.dockyard-stamp"
fi

# The pyproject has no packages (the repo root is the import root), so instead of an
# editable install we install the dependency lists and put the repo on sys.path via a .pth.
stamp_now="$(cat pyproject.toml "$SELF" | sha256sum | cut -d' ' -f1)"
stamp_file="$VENV/.dockyard-stamp"
if [ "$(cat "$stamp_file" 2>/dev/null || true)" != "$stamp_now" ]; then
  log "installing Python dependencies into .venv"
  reqs="$("$VENV/bin/python" - <<'PYEOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
deps = list(project.get("dependencies", []))
for extra in ("test",):
    deps += project.get("optional-dependencies", {}).get(extra, [])
print("\n".join(deps))
PYEOF
)"
  mapfile -t req_array <<< "$reqs"
  pip_quiet() {
    # This machine's pip.conf names local mirrors that may be absent: drop those warnings.
    "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  }
  pip_quiet install -q --upgrade pip
  pip_quiet install -q "${req_array[@]}"
  "$VENV/bin/python" -c 'import django, celery, channels, daphne, pytest, docker' \
    || die "the Python dependencies did not install"
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  printf '%s\n' "$ROOT" > "$site/dockyard-repo.pth"
  printf '%s\n' "$stamp_now" > "$stamp_file"
fi

# --------------------------------------------------------------------------- redis
redis_up() {
  # A PING over bash's /dev/tcp (in a subshell, so a refused connect stays quiet):
  # no dependency on redis-cli or on the venv.
  (
    exec 3<>/dev/tcp/127.0.0.1/6379 || exit 1
    printf 'PING\r\n' >&3
    reply=""
    read -r -t 2 reply <&3 || true
    [[ "$reply" == +PONG* || "$reply" == -NOAUTH* ]]
  ) 2>/dev/null
}

if ! redis_up; then
  log "starting redis-server on 127.0.0.1:6379"
  mkdir -p /run/dockyard "$ROOT/var/log" "$ROOT/var/redis"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes \
    --pidfile /run/dockyard/redis.pid --logfile "$ROOT/var/log/redis.log" \
    --dir "$ROOT/var/redis" --save '' --appendonly no
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
  redis_up || die "redis-server did not answer on 127.0.0.1:6379 (see var/log/redis.log)"
fi

log "ok"
