"""Which agent version a sandbox runs (docs/reference/nemoclaw-commands.md, "The agent version check").

A running sandbox is always probed inside its container (`openclaw --version` through the
Docker API exec): a cached registry value may be stale (#4429). A stopped (or failed) sandbox is
never started to ask it: it is judged by the registry's recorded `agentVersion`, else by its
image (the agent definition's `version_label`, else the OCI `org.opencontainers.image.version`
label), else its version is unknown.
"""

from __future__ import annotations

import shlex
from typing import Any

import attrs

from ..openshell.cli import parse_version, version_gte
from ..nemoclaw_registry import SandboxEntry
from .definitions import AgentSpec


@attrs.frozen
class VersionCheck:
    name: str
    running: bool
    expected: str | None
    current: str | None

    @property
    def stale(self) -> bool:
        return self.expected is not None and self.current is not None and not version_gte(self.current, self.expected)

    @property
    def unknown(self) -> bool:
        return self.expected is None or self.current is None


def probe_version(container: Any, agent: AgentSpec, timeout_s: int = 15) -> str | None:
    """Run the agent's version command inside the container; the first X.Y.Z it prints.

    Bounded with the image's `timeout` program (the Docker exec API has no deadline); an image
    without one (exit 126/127 from `timeout` itself) is asked again without it."""
    if not agent.version_command:
        return None
    command = shlex.split(agent.version_command)
    from ..sandbox_containers import data_root

    root = data_root(container)  # run where the agent lives: the image's WorkingDir rule (0.0.99+)
    for argv in (["timeout", str(timeout_s), *command], command):
        try:
            # uid 0, not the name `root`: an image without /etc/passwd cannot resolve the name.
            rc, output = container.exec_run(argv, stdout=True, stderr=True, demux=False, user="0", workdir=root)
        except Exception:  # noqa: BLE001 - any failure to probe means "unavailable"
            return None
        text = (output or b"").decode("utf-8", "replace")
        if rc in (126, 127) and argv[0] == "timeout" and "timeout" in text:
            continue  # no usable `timeout` in this image
        if rc != 0:
            return None
        return parse_version(text)
    return None


OCI_VERSION_LABEL = "org.opencontainers.image.version"


def image_version(container: Any, agent: AgentSpec) -> str | None:
    """The agent version the container's image declares in its labels (read, never run), or None."""
    try:
        from ..sandbox_containers import docker_client

        image = docker_client().images.get(container.attrs.get("Image") or container.image.id)
        labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    except Exception:  # noqa: BLE001 - an image that cannot be read declares nothing
        return None
    for key in (agent.version_label, OCI_VERSION_LABEL):
        if key and labels.get(key):
            found = parse_version(str(labels[key]))
            if found:
                return found
    return None


def recorded_version(entry: SandboxEntry, agent: AgentSpec, stopped: Any | None) -> str | None:
    """A sandbox that is not running: the registry's agentVersion, else its image's, else None."""
    if entry.agent_version:
        return entry.agent_version
    return image_version(stopped, agent) if stopped is not None else None


def check_version(entry: SandboxEntry, agent: AgentSpec, container: Any | None, *, stopped: Any | None = None) -> VersionCheck:
    """Probe a running sandbox's `container`; judge one that is not running (its `stopped`
    container, when there is one) without starting it."""
    expected = agent.expected_version
    if container is not None:
        current = probe_version(container, agent)
        return VersionCheck(entry.name, True, expected, current)
    return VersionCheck(entry.name, False, expected, recorded_version(entry, agent, stopped))
