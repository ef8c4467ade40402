# Sourced by scripts/test and scripts/demo: everything a fresh machine needs.
#  - .venv with the package (and its test extras when SETUP_EXTRAS=test) and the OpenShell
#    stand-in, its own distribution in sim/ (the `nemoclaw-sim` command)
#  - a Docker engine (scripts/docker-engine.sh): DOCKER_HOST exported; ENGINE_STARTED_HERE=1
#    when a private engine was started for this run (stop it with `stop_engine_if_ours`), never
#    when one already answered (another run's private engine is not ours to stop).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${PYTHON:-python3}"
# Resolve the real interpreter: a pyenv shim re-executes Python and loses argv0.
PY="$("$PY" -c 'import sys; print(sys.executable)')"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras="${SETUP_EXTRAS:+[$SETUP_EXTRAS]}"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras" -e ./sim

# Off-host copies (orchestrator/adapters/restic/) drive Debian's restic; the tests serve a REST
# repository with rclone. Installed where missing, like Docker (scripts/docker-engine.sh).
missing_tools=()
command -v restic >/dev/null 2>&1 || missing_tools+=(restic)
command -v rclone >/dev/null 2>&1 || missing_tools+=(rclone)
if [ "${#missing_tools[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: need root to install ${missing_tools[*]}" >&2; exit 1; fi
  echo "setup: installing ${missing_tools[*]} from Debian" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_tools[@]}" >&2
fi

ENGINE_STARTED_HERE=0
eval "$(scripts/docker-engine.sh start)"  # sets ENGINE_STARTED_HERE=1 only when it started one
export DOCKER_HOST
if [ -n "${NEMOCLAW_KEEP_DOCKER:-}" ]; then ENGINE_STARTED_HERE=0; fi

stop_engine_if_ours() {
  if [ "$ENGINE_STARTED_HERE" = 1 ]; then "$ROOT/scripts/docker-engine.sh" stop; fi
}
export PATH="$ROOT/.venv/bin:$PATH"
