"""The gateway's Docker compute driver (reference §5.2), talking to the engine at DOCKER_HOST.

Containers look like the real driver's (name, labels, restart policy, user 0, no volumes) except
for two local constraints: network mode `none` (the test engine has no bridge) and an idle
shell instead of the bind-mounted supervisor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import docker
import docker.errors

MANAGED_BY = "openshell.ai/managed-by"
LABEL_ID = "openshell.ai/sandbox-id"
LABEL_NAME = "openshell.ai/sandbox-name"
LABEL_NAMESPACE = "openshell.ai/sandbox-namespace"
# Extra "template" label so `nemoclaw-sim down` only touches its own deployment's containers.
LABEL_DEPLOYMENT = "nemoclaw-sim/deployment"

# Idle forever, but leave promptly on `docker stop` (a bare `sleep` as PID 1 ignores SIGTERM).
IDLE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait"]


def sanitize(name: str) -> str:
    return re.sub(r"[^a-z0-9_.-]", "-", name.lower())


def container_name(sandbox_name: str, sandbox_id: str) -> str:
    return f"openshell-{sanitize(sandbox_name)}-{sandbox_id}"[:200]


def phase_for_state(status: str | None) -> str:
    """Container state → sandbox phase. running → Ready; created/restarting/paused → Provisioning;
    exited/dead (stopped behind the gateway's back) → Error; removing → Deleting; missing → Error."""
    return {
        "running": "Ready",
        "created": "Provisioning",
        "restarting": "Provisioning",
        "paused": "Provisioning",
        "exited": "Error",
        "dead": "Error",
        "removing": "Deleting",
    }.get(status or "", "Error")


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class DockerDriver:
    def __init__(self, deployment: str | None = None) -> None:
        self.client = docker.from_env(timeout=120)
        self.deployment = deployment

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:  # noqa: BLE001 - any failure means "not usable"
            return False

    def create(self, sandbox_id: str, name: str, image: str, labels: dict[str, str]) -> str:
        all_labels = dict(labels)
        all_labels.update({MANAGED_BY: "openshell", LABEL_ID: sandbox_id, LABEL_NAME: name, LABEL_NAMESPACE: "default"})
        if self.deployment:
            all_labels[LABEL_DEPLOYMENT] = self.deployment
        cname = container_name(name, sandbox_id)
        c = self.client.containers.create(
            image, entrypoint=IDLE_COMMAND[:1], command=IDLE_COMMAND[1:], name=cname, labels=all_labels,
            network_mode="none", user="0", working_dir="/sandbox", hostname=sanitize(name)[:63] or "sandbox",
            restart_policy={"Name": "unless-stopped"}, detach=True,
        )
        c.start()
        return cname

    def status(self, cname: str) -> str | None:
        """Docker's State.Status, or None when the container does not exist."""
        try:
            return self.client.api.inspect_container(cname)["State"]["Status"]
        except docker.errors.NotFound:
            return None

    def start(self, cname: str) -> None:
        self.client.api.start(cname)

    def stop(self, cname: str, timeout: int = 10) -> None:
        try:
            self.client.api.stop(cname, timeout=timeout)
        except docker.errors.NotFound:
            pass

    def remove(self, cname: str) -> None:
        try:
            self.client.api.remove_container(cname, force=True)
        except docker.errors.NotFound:
            pass

    def exec(self, cname: str, cmd: list[str]) -> ExecResult:
        c = self.client.containers.get(cname)
        rc, (out, err) = c.exec_run(cmd, demux=True)
        return ExecResult(rc if rc is not None else 1, out or b"", err or b"")

    def image_exists(self, image: str) -> bool:
        try:
            self.client.images.get(image)
            return True
        except docker.errors.ImageNotFound:
            return False
