#!/usr/bin/env bash
# Dockyard stack control: start | stop | status | restart
#   start   setup, migrate, bootstrap, collectstatic, then worker + Docker API server + panel
#           in the background (pid files in /run/dockyard, logs in var/log); waits until each answers.
#   stop    stops what start started (by pid file). Containers keep running: their shims are
#           detached, as Docker's containers survive a daemon restart.
# Honours the DOCKYARD_* variables (docs/ARCHITECTURE.md) if they are set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUN_DIR="${DOCKYARD_RUN_DIR:-/run/dockyard}"
LOG_DIR="$ROOT/var/log"
PY="$ROOT/.venv/bin/python"
NODE="${DOCKYARD_NODE:-local}"
API_SOCKET="${DOCKYARD_API_SOCKET:-/run/dockyard/docker.sock}"
API_TCP="${DOCKYARD_API_TCP-127.0.0.1:2375}"
PANEL_HOST="${DOCKYARD_PANEL_HOST:-127.0.0.1}"
PANEL_PORT="${DOCKYARD_PANEL_PORT:-8000}"
PANEL_URL="http://$PANEL_HOST:$PANEL_PORT"
START_TIMEOUT="${DOCKYARD_START_TIMEOUT:-90}"
SERVICES=(worker dockerapi panel)

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# ----------------------------------------------------------------------------- helpers
service_argv() {
  # Sets CMD (an array) to the service's command line.
  case "$1" in
    worker) CMD=("$ROOT/.venv/bin/celery" -A workers worker -Q "node.$NODE"
                 -n "worker@%h" --loglevel INFO) ;;
    dockerapi) CMD=("$PY" manage.py dockerapi) ;;
    panel) CMD=("$ROOT/.venv/bin/daphne" -b "$PANEL_HOST" -p "$PANEL_PORT" panel.asgi:application) ;;
  esac
}

# A word that must appear in the process's command line (guards against a reused pid).
service_marker() {
  case "$1" in
    worker) echo "celery" ;;
    dockerapi) echo "dockerapi" ;;
    panel) echo "daphne" ;;
  esac
}

pid_of() {
  # Prints the pid of a running service started by this script, or nothing.
  local f="$RUN_DIR/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$(service_marker "$1")"; then
    echo "$pid"
  fi
}

probe() {
  # probe panel|dockerapi -> exit 0 when the service answers.
  "$PY" - "$1" "$PANEL_URL" "$API_SOCKET" <<'PYEOF' 2>/dev/null
import http.client, socket, sys
what, panel_url, sock_path = sys.argv[1:4]

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=3)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(3)
        self.sock.connect(self.path)

if what == "panel":
    host, port = panel_url.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=3)
    conn.request("GET", "/login/")
    sys.exit(0 if conn.getresponse().status in (200, 302) else 1)
if what == "dockerapi":
    conn = UnixConnection(sock_path)
    conn.request("GET", "/_ping")
    resp = conn.getresponse()
    sys.exit(0 if resp.status == 200 and resp.read().strip() == b"OK" else 1)
sys.exit(2)
PYEOF
}

worker_ready() {
  # Celery logs "<name>@<host> ready." once it consumes; look only at this start's part of the log.
  local offset="$1"
  tail -c "+$((offset + 1))" "$LOG_DIR/worker.log" 2>/dev/null | grep -q ' ready\.'
}

declare -A STARTED=()

start_service() {
  local name="$1" pid logf="$LOG_DIR/$1.log"
  pid="$(pid_of "$name")"
  if [ -n "$pid" ]; then
    log "$name already running (pid $pid)"
    return 0
  fi
  service_argv "$name"
  STARTED[$name]="$(stat -c %s "$logf" 2>/dev/null || echo 0)"
  printf '\n===== %s start: %s\n' "$(date -u +%FT%TZ)" "${CMD[*]}" >> "$logf"
  rm -f "$RUN_DIR/$name.pid"
  # setsid: its own session, so a Ctrl-C in the calling terminal does not reach it, and
  # the pid written by the child itself is also its process group id.
  # shellcheck disable=SC2016  # $$ and "$@" are for the inner shell
  setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$RUN_DIR/$name.pid" "${CMD[@]}" \
    >> "$logf" 2>&1 < /dev/null &
  disown || true
  for _ in $(seq 1 50); do
    [ -s "$RUN_DIR/$name.pid" ] && break
    sleep 0.1
  done
  log "$name started (pid $(cat "$RUN_DIR/$name.pid" 2>/dev/null || echo '?'), log var/log/$name.log)"
}

wait_ready() {
  local name="$1" offset="${2:-0}" deadline=$((SECONDS + START_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -z "$(pid_of "$name")" ]; then
      log "$name exited during start; last lines of var/log/$name.log:"
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      return 1
    fi
    case "$name" in
      worker) worker_ready "$offset" && return 0 ;;
      *) probe "$name" && return 0 ;;
    esac
    sleep 0.3
  done
  log "$name did not answer within ${START_TIMEOUT}s; last lines of var/log/$name.log:"
  tail -n 40 "$LOG_DIR/$name.log" >&2 || true
  return 1
}

stop_service() {
  local name="$1" pid
  pid="$(pid_of "$name")"
  if [ -z "$pid" ]; then
    rm -f "$RUN_DIR/$name.pid"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -d "/proc/$pid" ] || break
    sleep 0.2
  done
  if [ -d "/proc/$pid" ]; then
    log "$name did not stop in 20s: killing its process group"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  # Leftover children in the group (prefork pool processes). Shims run in their own
  # sessions and process groups, so they are not hit.
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$RUN_DIR/$name.pid"
}

has_command() {
  "$PY" manage.py help "$1" > /dev/null 2>&1
}

print_summary() {
  local user="admin" pw=""
  if [ -f "$ROOT/var/bootstrap.out" ]; then
    # bootstrap prints "Created the admin login: <user> / <password>" on its first run.
    local line
    line="$(grep -o -E 'login: [^ ]+ / [^ ]+' "$ROOT/var/bootstrap.out" | head -n1 || true)"
    if [ -n "$line" ]; then
      user="$(printf '%s' "$line" | awk '{print $2}')"
      pw="$(printf '%s' "$line" | awk '{print $4}')"
    fi
  fi
  local tcp_line=""
  if [ -n "$API_TCP" ]; then
    tcp_line="
  Over TCP (a per-user token; the docker CLI sends it from ~/.docker/config.json):
    TOKEN=\$($PY $ROOT/manage.py createtoken --quiet $user)
    mkdir -p ~/.docker && printf '{\"HttpHeaders\": {\"Authorization\": \"Bearer %s\"}}\n' \"\$TOKEN\" > ~/.docker/config.json
    docker -H tcp://$API_TCP ps"
  fi
  cat <<SUMMARY

Dockyard is running.

  Panel:   $PANEL_URL
  Login:   $user${pw:+ / $pw}${pw:+   (printed once by bootstrap; kept in var/bootstrap.out, mode 600)}

  Docker CLI over the unix socket (root, acts as the admin):
    export DOCKER_HOST=unix://$API_SOCKET
    docker run --rm busybox true
$tcp_line

  Logs:    var/log/{worker,dockerapi,panel}.log      Stop:  make stop
SUMMARY
}

# ----------------------------------------------------------------------------- commands
cmd_start() {
  bash "$ROOT/scripts/setup.sh"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  chmod 700 "$ROOT/var" 2>/dev/null || true
  export DOCKYARD_NODE="$NODE"

  log "migrate"
  "$PY" manage.py migrate --noinput >> "$LOG_DIR/manage.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/manage.log" >&2; die "manage.py migrate failed (var/log/manage.log)"; }

  if has_command bootstrap; then
    log "bootstrap"
    local out
    out="$("$PY" manage.py bootstrap 2>> "$LOG_DIR/manage.log")" \
      || { tail -n 30 "$LOG_DIR/manage.log" >&2; die "manage.py bootstrap failed (var/log/manage.log)"; }
    if [ -n "$out" ]; then
      printf '%s\n' "$out"
      if printf '%s' "$out" | grep -q -E 'login: [^ ]+ / '; then
        (umask 077; printf '%s\n' "$out" > "$ROOT/var/bootstrap.out")
      fi
    fi
  else
    log "warning: no 'bootstrap' management command yet: skipping (no node, team or admin made)"
  fi

  log "collectstatic"
  "$PY" manage.py collectstatic --noinput >> "$LOG_DIR/manage.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/manage.log" >&2; die "manage.py collectstatic failed (var/log/manage.log)"; }

  if [ -z "$(pid_of panel)" ] && (exec 3<>"/dev/tcp/$PANEL_HOST/$PANEL_PORT") 2>/dev/null; then
    die "something else listens on $PANEL_HOST:$PANEL_PORT"
  fi

  start_service worker
  if has_command dockerapi; then
    start_service dockerapi
  else
    log "warning: no 'dockerapi' management command yet: the Docker API is not started"
  fi
  start_service panel

  local ok=1
  if [ -n "${STARTED[worker]:-}" ]; then wait_ready worker "${STARTED[worker]}" || ok=0; fi
  if [ -n "$(pid_of dockerapi)" ]; then wait_ready dockerapi || ok=0; fi
  wait_ready panel || ok=0
  [ "$ok" = 1 ] || die "the stack did not come up (see var/log/)"
  print_summary
}

cmd_stop() {
  # Reverse order: stop taking requests first, then the worker.
  stop_service panel
  stop_service dockerapi
  stop_service worker
  log "stopped (containers and their shims keep running; redis-server is left running)"
}

cmd_status() {
  local rc=0 pid
  for s in "${SERVICES[@]}"; do
    pid="$(pid_of "$s")"
    if [ -n "$pid" ]; then
      printf '%-10s running  pid %s\n' "$s" "$pid"
    else
      printf '%-10s stopped\n' "$s"
      rc=3
    fi
  done
  if [ -x "$PY" ]; then
    probe panel && echo "panel      answers on $PANEL_URL/login/" || echo "panel      does not answer on $PANEL_URL"
    probe dockerapi && echo "dockerapi  answers on unix://$API_SOCKET" || echo "dockerapi  does not answer on unix://$API_SOCKET"
  fi
  local shims
  shims="$(pgrep -f 'workers\.runtime\.shim' 2>/dev/null | wc -l || true)"
  echo "shims      $shims running"
  return "$rc"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
