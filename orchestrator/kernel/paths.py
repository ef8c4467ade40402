"""Where NemoClaw keeps its files. Everything hangs off $HOME, so tests and the stand-in can
point a whole run at a scratch directory by setting HOME."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

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


@attrs.frozen
class Paths:
    home: Path

    @classmethod
    def from_env(cls, env: "os._Environ[str] | dict[str, str] | None" = None) -> "Paths":
        env = os.environ if env is None else env
        return cls(home=Path(env.get("HOME") or "/tmp"))

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
    def gateway_state_dir(self) -> Path:
        """Onboarding's host-process gateway state dir (pid file, log, runtime.json marker)."""
        override = os.environ.get("NEMOCLAW_OPENSHELL_GATEWAY_STATE_DIR")
        if override:
            return Path(override).resolve()
        return self.home / ".local" / "state" / "nemoclaw" / "openshell-docker-gateway"
