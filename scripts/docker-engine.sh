#!/usr/bin/env bash
# Make a Docker engine available for the tests and the demo.
#
#   scripts/docker-engine.sh start   -> prints `export DOCKER_HOST=...` for an engine that answers,
#                                       and `ENGINE_STARTED_HERE=1` only when this call started it
#   scripts/docker-engine.sh stop    -> stops the private engine this script started (if any)
#
# Uses $DOCKER_HOST or the default socket when an engine answers there. Otherwise, as root,
# installs Debian's docker.io (and busybox-static, which the sandbox images are built from)
# when missing and starts a private dockerd on its own socket and data root, so nothing of a
# system engine is touched.
set -euo pipefail

STATE_DIR="${NEMOCLAW_TEST_DOCKER_DIR:-/tmp/nemoclaw-docker}"
SOCK="$STATE_DIR/docker.sock"
PIDFILE="$STATE_DIR/dockerd.pid"
LOG="$STATE_DIR/dockerd.log"

log() { echo "docker-engine: $*" >&2; }

answers() { DOCKER_HOST="$1" timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  [ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing+=(busybox-static)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then log "need root to install ${missing[*]}"; exit 1; fi
    log "installing ${missing[*]} from Debian"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

start() {
  ensure_packages
  # An engine that already answers is somebody else's (a system engine, or the private one of
  # another test run or demo): used, and never stopped by us.
  if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then
    echo "export DOCKER_HOST=$DOCKER_HOST"; echo "ENGINE_STARTED_HERE=0"; return
  fi
  if answers "unix:///var/run/docker.sock"; then
    echo "export DOCKER_HOST=unix:///var/run/docker.sock"; echo "ENGINE_STARTED_HERE=0"; return
  fi
  if answers "unix://$SOCK"; then
    echo "export DOCKER_HOST=unix://$SOCK"; echo "ENGINE_STARTED_HERE=0"; return
  fi
  if [ "$(id -u)" != 0 ]; then log "no Docker engine answers and starting one needs root"; exit 1; fi
  mkdir -p "$STATE_DIR/data" "$STATE_DIR/exec"
  rm -f "$SOCK" "$PIDFILE"
  log "starting a private dockerd (log: $LOG)"
  setsid dockerd --data-root "$STATE_DIR/data" --exec-root "$STATE_DIR/exec" \
    --storage-driver vfs --iptables=false --ip6tables=false --bridge=none \
    -H "unix://$SOCK" --pidfile "$PIDFILE" >"$LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    if answers "unix://$SOCK"; then echo "export DOCKER_HOST=unix://$SOCK"; echo "ENGINE_STARTED_HERE=1"; return; fi
    sleep 0.5
  done
  log "dockerd did not answer within 30 s; last log lines:"; tail -20 "$LOG" >&2; exit 1
}

stop() {
  [ -f "$PIDFILE" ] || return 0
  local pid; pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    # Remove our containers first so no shim outlives the engine.
    DOCKER_HOST="unix://$SOCK" docker ps -aq 2>/dev/null | xargs -r env DOCKER_HOST="unix://$SOCK" docker rm -f >/dev/null 2>&1 || true
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
