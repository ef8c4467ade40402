"""Where NemoClaw keeps its files. Everything hangs off $HOME, so tests and the stand-in can
point a whole run at a scratch directory by setting HOME."""

from __future__ import annotations

import os
from pathlib import Path

COMPAT_ROOT = "/sandbox"
"""The sandbox data root of the images we know; OpenShell >= 0.0.99 may move it to the image's
OCI WorkingDir (docs/reference/openshell-sandbox-containers.md)."""


def rebase(path: str, root: str | None) -> str:
    """`/sandbox/...` moved under the data root `root`; any other path (or no root) unchanged.
    Manifests record the agent's canonical `/sandbox/...` directory; a restore or a probe moves
    it under the container's own root."""
    if not root or root == COMPAT_ROOT or not (path == COMPAT_ROOT or path.startswith(COMPAT_ROOT + "/")):
        return path
    return root + path[len(COMPAT_ROOT):]


class Paths:
    """Where a run's files are, fixed when it is made: `from_env` reads the environment (HOME,
    $NEMOCLAW_OPENSHELL_GATEWAY_STATE_DIR) once, so nothing below reads os.environ for a path.
    A plain immutable class (no attrs): `nemoclaw --help` imports it."""

    __slots__ = ("home", "gateway_state_override")
    home: Path
    gateway_state_override: Path | None

    def __init__(self, home: Path, gateway_state_override: Path | None = None) -> None:
        object.__setattr__(self, "home", Path(home))
        object.__setattr__(self, "gateway_state_override", gateway_state_override)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Paths is immutable; cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Paths):
            return NotImplemented
        return (self.home, self.gateway_state_override) == (other.home, other.gateway_state_override)

    def __hash__(self) -> int:
        return hash((self.home, self.gateway_state_override))

    def __repr__(self) -> str:
        return f"Paths(home={self.home!r}, gateway_state_override={self.gateway_state_override!r})"

    @classmethod
    def from_env(cls, env: "os._Environ[str] | dict[str, str] | None" = None) -> "Paths":
        env = os.environ if env is None else env
        override = env.get("NEMOCLAW_OPENSHELL_GATEWAY_STATE_DIR")
        return cls(Path(env.get("HOME") or "/tmp"), Path(override).resolve() if override else None)

    @property
    def nemoclaw_dir(self) -> Path:
        return self.home / ".nemoclaw"

    @property
    def registry_file(self) -> Path:
        return self.nemoclaw_dir / "sandboxes.json"

    @property
    def backups_root(self) -> Path:
        return self.nemoclaw_dir / "rebuild-backups"

    @property
    def staging_root(self) -> Path:
        return self.backups_root / ".staging"

    @property
    def lock_file(self) -> Path:
        return self.nemoclaw_dir / "orchestrator.lock"

    @property
    def runs_dir(self) -> Path:
        return self.nemoclaw_dir / "runs"

    @property
    def user_workflows_dir(self) -> Path:
        return self.nemoclaw_dir / "workflows"

    @property
    def summary_cache(self) -> Path:
        """The workflow files' summaries for `nemoclaw --help` (workflow/summaries.py)."""
        return self.nemoclaw_dir / "cache" / "workflow-summaries"

    @property
    def gateway_state_dir(self) -> Path:
        """Onboarding's host-process gateway state dir (pid file, log, runtime.json marker)."""
        if self.gateway_state_override is not None:
            return self.gateway_state_override
        return self.home / ".local" / "state" / "nemoclaw" / "openshell-docker-gateway"
