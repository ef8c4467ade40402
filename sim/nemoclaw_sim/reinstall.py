"""The user's reinstall of OpenShell from a 0.0.x release to a 0.1.x one (`nemoclaw-sim upgrade-openshell`).

What a user does by hand, following OpenShell's 0.1.0 upgrade guide (docs/reference/openshell-reinstall.md):
a local 0.0.x installation cannot be upgraded in place, so the old runtime is stopped and put
aside and 0.1.x is installed next to nothing of it. Here, in this order:

1. stop the 0.0.x gateway: the host process this deployment started and one NemoClaw restarted
   (its pid file), and this deployment's legacy cluster container if it has one;
2. move the 0.0.x database (and any `-wal`/`-shm` sidecar) aside to `openshell.db.bak-<version>`,
   the backup the guide asks for, so the 0.1.x gateway starts on a fresh one;
3. install the 0.1.x `openshell` and `openshell-gateway` (and the simulator's private CLI);
4. start the 0.1.x gateway on the same port and registration (`nemoclaw`), with its `gateway.toml`.

The 0.0.x sandbox containers still in Docker are left as they are: the 0.1.x gateway has no row
for them, so it neither lists nor deletes them (it does not adopt containers it did not create).
Sandboxes created from then on are the 0.1.x pair in workspace `default`. NemoClaw's registry
(`~/.nemoclaw/sandboxes.json`, `gateways/<port>/`) and the gateway registration are not touched:
an OpenShell reinstall does not know about them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import deploy, versions
from .install import install_program
from .versions import Version

DB_SIDECARS = ("", "-wal", "-shm")


@dataclass
class Reinstall:
    """What `upgrade_openshell` did: the versions before and after, where the old database went,
    and the 0.0.x containers it left in Docker (names, workloads and nothing else)."""

    home: str
    old_cli: str
    old_gateway: str
    version: str
    old_gateway_pids: list[int] = field(default_factory=list)
    db_backup: str | None = None
    gateway_pid: int | None = None
    endpoint: str = ""
    unadopted: list[str] = field(default_factory=list)
    cluster_stopped: str | None = None


def _refusal(dep: deploy.Deployment, target: Version) -> str | None:
    """One sentence when this reinstall cannot be played, else None."""
    if not versions.known_0_1_release(target):
        return (f"OpenShell {target} is not a 0.1.x release the stand-in knows (0.1.0 to {versions.NEWEST_0_1}); "
                f"give one of those, e.g. 0.1.5.")
    if Version(dep.gateway_version).line != (0, 0):
        return (f"the deployment in {dep.home} already runs openshell-gateway {dep.gateway_version}, not a 0.0.x "
                f"release; use swap-cli or swap-gateway to change versions within the 0.1.x line.")
    return None


def _backup_path(db: Path, version: str) -> Path:
    """`openshell.db.bak-<version>`, or with `.N` when an earlier reinstall left one there."""
    base = db.with_name(f"{db.name}.bak-{version}")
    candidate, n = base, 1
    while any(Path(f"{candidate}{s}").exists() for s in DB_SIDECARS):
        candidate, n = base.with_name(f"{base.name}.{n}"), n + 1
    return candidate


def unadopted_containers(dep: deploy.Deployment) -> list[str]:
    """This deployment's sandbox containers (workloads) that its gateway's release line did not
    create: after the reinstall, the 0.0.x ones left in Docker."""
    from .driver import LABEL_DEPLOYMENT

    found = deploy._docker(dep).containers.list(all=True, filters={"label": f"{LABEL_DEPLOYMENT}={dep.deployment_id}"})
    return sorted(c.name for c in found
                  if c.labels.get("nemoclaw-sim/role") != "cluster" and not deploy.of_gateway_line(dep, c.labels))


def upgrade_openshell(home: Path, version: str) -> Reinstall:
    """Play the reinstall of OpenShell `version` (0.1.x) over this home's 0.0.x deployment."""
    from . import cluster
    from .images import ensure_base_image

    target = Version(version)
    home = home.resolve()
    dep = deploy.load(home)
    refusal = _refusal(dep, target)
    if refusal:
        raise deploy.SimError(refusal)
    paths = deploy.Paths(home)
    result = Reinstall(home=str(home), old_cli=dep.cli_version, old_gateway=dep.gateway_version, version=version)

    # 1. Stop the 0.0.x runtime.
    result.old_gateway_pids = [p for p in _gateway_pids(dep, paths) if deploy.pid_alive(p)]
    deploy.stop_gateway(dep)
    client = deploy._docker(dep)
    if cluster.owner(client) == dep.deployment_id:
        c = client.containers.get(cluster.cluster_name())
        if c.status == "running":
            c.stop(timeout=10)
        result.cluster_stopped = c.name
    for f in (paths.pid_file, paths.marker):
        f.unlink(missing_ok=True)

    # 2. The old database goes aside; the new gateway creates a fresh one.
    if paths.db.exists():
        backup = _backup_path(paths.db, dep.gateway_version)
        for suffix in DB_SIDECARS:
            src = Path(f"{paths.db}{suffix}")
            if src.exists():
                os.replace(src, f"{backup}{suffix}")
        result.db_backup = str(backup)

    # 3. The 0.1.x programs (the supervisor companion runs the base image).
    ensure_base_image(client)
    install_program(paths.bin, "openshell", version)
    install_program(paths.bin, "openshell-gateway", version)
    install_program(paths.private_bin, "openshell", version)
    dep.cli_version = dep.gateway_version = version
    dep.gateway_pid = None
    dep.upgraded_from = result.old_gateway
    dep.sandboxes = []
    deploy.save(dep)

    # 4. The 0.1.x gateway, same port and registration.
    result.gateway_pid = deploy.start_gateway(dep)
    result.endpoint = dep.endpoint
    result.unadopted = unadopted_containers(dep)
    return result


def _gateway_pids(dep: deploy.Deployment, paths: deploy.Paths) -> list[int]:
    pids = [dep.gateway_pid] if dep.gateway_pid else []
    try:
        pids.append(int(paths.pid_file.read_text().strip()))
    except (OSError, ValueError):
        pass
    return [p for p in dict.fromkeys(pids) if deploy.is_gateway_process(p)]
