"""The gateway's Docker compute driver, talking to the engine at DOCKER_HOST
(docs/reference/openshell-cli-and-gateway.md, "Docker driver").

Containers look like the real driver's (name, labels, restart policy, user 0, no volumes) except
for two local constraints: network mode `none` (the test engine has no bridge) and an idle
shell instead of the bind-mounted supervisor. By release (docs/reference/openshell-sandbox-containers.md):

* ≤0.0.87: one container `openshell-{name}-{id}`;
* 0.0.88+: `openshell-{workspace}--{name}-{id}` and the label `openshell.ai/sandbox-workspace`;
* 0.0.99+: the working directory (data root) is the image's WorkingDir unless it is empty, `/`
  or `/sandbox`;
* 0.1.x: two containers, the workload and a supervisor companion `openshell-supervisor-{id}`,
  both carrying the sandbox labels plus `openshell.ai/isolation-role=sandbox|supervisor` (the
  spelling current OpenShell writes; an earlier Podman driver wrote `openshell.io/`), sharing
  the channel volume `openshell-channel-{id}` (writable in the workload, read-only in the
  supervisor) at `/.openshell`; non-root (uid 1000), restart policy `no`. The pair is started
  and stopped together (supervisor first on start, last on stop).

Phases of a container that is not running (docs/reference/sandbox-lifecycle.md): stopped
through `openshell sandbox stop` (the gateway records the stop) → `Stopped`; exited any other
way (a bare `docker stop` or `docker kill`, a daemon restart) → `Error`.
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
LABEL_WORKSPACE = "openshell.ai/sandbox-workspace"
LABEL_ROLE = "openshell.ai/isolation-role"
ROLE_LABELS = (LABEL_ROLE, "openshell.io/isolation-role")  # read both spellings
CHANNEL_MOUNT = "/.openshell"
COMPAT_ROOT = "/sandbox"
# Extra "template" label so `nemoclaw-sim down` only touches its own deployment's containers.
LABEL_DEPLOYMENT = "nemoclaw-sim/deployment"

# Idle forever, but leave promptly on `docker stop` (a bare `sleep` as PID 1 ignores SIGTERM).
IDLE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait"]


def sanitize(name: str) -> str:
    return re.sub(r"[^a-z0-9_.-]", "-", name.lower())


def container_name(sandbox_name: str, sandbox_id: str, workspace: str | None = None) -> str:
    """≤200 characters; only the name part is truncated."""
    if workspace is None:
        head, tail = "openshell-", f"-{sandbox_id}"
    else:
        head, tail = f"openshell-{sanitize(workspace)}--", f"-{sandbox_id}"
    return head + sanitize(sandbox_name)[: max(0, 200 - len(head) - len(tail))] + tail


def supervisor_name(sandbox_id: str) -> str:
    return f"openshell-supervisor-{sandbox_id}"


def channel_volume(sandbox_id: str) -> str:
    return f"openshell-channel-{sandbox_id}"


def data_root(image_workdir: str | None) -> str:
    """0.0.99+: the image's WorkingDir, unless empty, `/` or `/sandbox` (then `/sandbox`)."""
    wd = (image_workdir or "").rstrip("/")
    return wd if wd and wd != COMPAT_ROOT else COMPAT_ROOT


def phase_for_state(status: str | None, stop_recorded: bool = False) -> str:
    """Container state → sandbox phase. running → Ready; created/restarting/paused → Provisioning;
    exited/dead → Stopped when the gateway stopped it (`openshell sandbox stop`), else Error
    (stopped behind the gateway's back); removing → Deleting; missing → Error."""
    if status in ("exited", "dead"):
        return "Stopped" if stop_recorded else "Error"
    return {
        "running": "Ready",
        "created": "Provisioning",
        "restarting": "Provisioning",
        "paused": "Provisioning",
        "removing": "Deleting",
    }.get(status or "", "Error")


def is_supervisor(labels: dict[str, str]) -> bool:
    return any(labels.get(k) == "supervisor" for k in ROLE_LABELS)


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

    def server_version(self) -> str:
        """The Docker daemon's version: what the real driver reports as `driver_version`."""
        try:
            return str(self.client.version().get("Version", ""))
        except Exception:  # noqa: BLE001
            return ""

    def create(self, sandbox_id: str, name: str, image: str, labels: dict[str, str], *, workspace: str | None = None,
               honor_workdir: bool = False, split: bool = False, supervisor_image: str | None = None) -> dict[str, str]:
        """Create and start the sandbox's container(s); returns {"container": …[, "supervisor", "volume"]}."""
        all_labels = dict(labels)
        all_labels.update({MANAGED_BY: "openshell", LABEL_ID: sandbox_id, LABEL_NAME: name, LABEL_NAMESPACE: "default"})
        if workspace is not None:
            all_labels[LABEL_WORKSPACE] = workspace
        if self.deployment:
            all_labels[LABEL_DEPLOYMENT] = self.deployment
        workdir = COMPAT_ROOT
        if honor_workdir:
            workdir = data_root(self.client.images.get(image).attrs.get("Config", {}).get("WorkingDir"))
        cname = container_name(name, sandbox_id, workspace)
        common = dict(entrypoint=IDLE_COMMAND[:1], command=IDLE_COMMAND[1:], network_mode="none", detach=True)
        out = {"container": cname}
        if not split:
            c = self.client.containers.create(
                image, name=cname, labels=all_labels, user="0", working_dir=workdir,
                hostname=sanitize(name)[:63] or "sandbox", restart_policy={"Name": "unless-stopped"}, **common)
            c.start()
            return out
        volume = channel_volume(sandbox_id)
        self.client.volumes.create(volume, labels={k: v for k, v in all_labels.items() if k != LABEL_NAME})
        sup = supervisor_name(sandbox_id)
        self.client.containers.create(
            supervisor_image or image, name=sup, labels={**all_labels, LABEL_ROLE: "supervisor"}, user="1000:1000",
            volumes={volume: {"bind": CHANNEL_MOUNT, "mode": "ro"}}, restart_policy={"Name": "no"},
            cap_drop=["ALL"], **common)
        self.client.containers.create(
            image, name=cname, labels={**all_labels, LABEL_ROLE: "sandbox"}, user="1000:1000", working_dir=workdir,
            hostname=sanitize(name)[:63] or "sandbox", volumes={volume: {"bind": CHANNEL_MOUNT, "mode": "rw"}},
            restart_policy={"Name": "no"}, cap_drop=["ALL"], **common)
        self.client.api.start(sup)
        self.client.api.start(cname)
        out.update(supervisor=sup, volume=volume)
        return out

    def status(self, cname: str) -> str | None:
        """Docker's State.Status, or None when the container does not exist. From the container
        list, not an inspect: the engine holds a container's lock while its archive is streamed
        (a backup reading it), and an inspect would wait for that; a gateway's listing does not."""
        rows = self.client.api.containers(all=True, filters={"name": cname})
        for row in rows:
            if f"/{cname}" in (row.get("Names") or []):
                return row.get("State")
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

    def remove_volume(self, volume: str) -> None:
        try:
            self.client.api.remove_volume(volume, force=True)
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
