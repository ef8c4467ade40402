"""Every call this program makes outside itself has a deadline, and they are all named here
(docs/reference/deadlines.md).

A hung `openshell` (or a gateway that accepts connections but never answers: a stopped
process, SIGSTOP) must give the standard "could not check" answer, not a run that waits
forever. The bounds:

- `probe()`: `openshell status`, `gateway info`, `--version`, `sandbox list`, `sandbox get`,
  `openshell-gateway --version`, the cluster container's inspect and the first Docker ping.
  Upstream's OPENSHELL_PROBE_TIMEOUT_MS (15 s); upstream runs `sandbox list` with no timeout at
  all, we give it this same bound, so `backup-all` and `upgrade-sandboxes --check` answer within
  the bound `nemoclaw gateway check` answers in. `NEMOCLAW_OPENSHELL_TIMEOUT` (seconds) sets it.
- `operation()`: `gateway select`, upstream's OPENSHELL_OPERATION_TIMEOUT_MS (30 s by default:
  twice the probe bound, so the variable scales it too).
- `READYZ`: each attempt of the HTTP `/readyz` probe of a host-process gateway's health
  listener (loopback: connect and answer; adapters/openshell/readyz.py).
- `DOCKER_REQUEST`: each Docker Engine API request of the shared client (the socket timeout of
  one request; an archive stream must deliver some data within it).

Read from the environment at each call (cheap), so a test may set the variable for one run.
"""

from __future__ import annotations

import os

TIMEOUT_ENV = "NEMOCLAW_OPENSHELL_TIMEOUT"
PROBE_SECONDS = 15.0
"""Upstream's OPENSHELL_PROBE_TIMEOUT_MS, the default of `probe()`."""
DOCKER_REQUEST = 120.0
READYZ = 2.0


def probe() -> float:
    """Seconds an `openshell` probe (and `sandbox list`) may take: NEMOCLAW_OPENSHELL_TIMEOUT
    (a positive number of seconds), else 15."""
    raw = (os.environ.get(TIMEOUT_ENV) or "").strip()
    try:
        value = float(raw) if raw else PROBE_SECONDS
    except ValueError:
        return PROBE_SECONDS
    return value if 0 < value < 86400 else PROBE_SECONDS


def operation() -> float:
    """Seconds `openshell gateway select` may take: twice the probe bound (30 s by default)."""
    return 2 * probe()
