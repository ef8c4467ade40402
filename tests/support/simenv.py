"""A simulated NemoClaw host for end-to-end tests: `SimEnv` (the `sim` fixture of tests/conftest.py).

    def test_backup(sim):                      # sim = SimEnv, already `up` (2 sandboxes: alpha, beta)
        res = sim.run(["nemoclaw", "backup-all"])   # subprocess that sees only sim.home
        assert res.returncode == 0
        sim.swap_gateway("0.0.43")             # on-disk gateway replaced; it crashes on the 0.0.44 DB
        sim.openshell("sandbox", "list")       # the installed CLI, CompletedProcess (text)
        sim.upgrade_openshell("0.1.5")         # a 0.0.x host reinstalled as 0.1.5: fresh DB, old containers unadopted

Customise with an indirect parameter:
    @pytest.mark.parametrize("sim", [{"cli": "0.0.44", "gateway": "0.0.43", "sandboxes": 1}], indirect=True)

`down` always runs at teardown (gateway stopped, this deployment's containers removed).
Needs the Docker engine at DOCKER_HOST (through the `docker_client` fixture: fails under CI=true).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nemoclaw_sim import deploy


@dataclass
class SimEnv:
    """One simulated home: programs in `bin`, gateway `nemoclaw` on `port`, sandboxes in Docker."""

    home: Path

    @property
    def paths(self) -> deploy.Paths:
        return deploy.Paths(self.home)

    @property
    def bin(self) -> Path:
        return self.paths.bin

    @property
    def state_dir(self) -> Path:
        """NemoClaw's gateway state dir (pid file, log, runtime.json, openshell.db)."""
        return self.paths.gateway_state

    @property
    def deployment(self) -> deploy.Deployment:
        return deploy.load(self.home)

    @property
    def port(self) -> int:
        return self.deployment.port

    @property
    def health_port(self) -> int:
        return self.deployment.health_port

    @property
    def endpoint(self) -> str:
        return self.deployment.endpoint

    @property
    def env(self) -> dict[str, str]:
        """HOME, PATH (bin first, then the venv), DOCKER_HOST and XDG_* dirs inside `home`."""
        return deploy.sim_env(self.home)

    def up(self, **kwargs: Any) -> deploy.Deployment:
        return deploy.up(self.home, **kwargs)

    def down(self) -> list[str]:
        return deploy.down(self.home)

    def run(self, argv: Sequence[str], timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a program (looked up on the sim PATH) with the sim environment; never raises on exit code."""
        import shutil

        env = kwargs.pop("env", None) or self.env
        exe = shutil.which(argv[0], path=env["PATH"]) or argv[0]
        return subprocess.run([exe, *argv[1:]], env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kwargs)

    def openshell(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(["openshell", *args])

    def swap_gateway(self, version: str) -> str | None:
        """Replace and restart the gateway; returns the failure text if it did not come up."""
        return deploy.swap_gateway(self.home, version)[1]

    def swap_cli(self, version: str) -> None:
        deploy.swap_cli(self.home, version)

    def upgrade_openshell(self, version: str = "0.1.5") -> Any:
        """The user's reinstall of OpenShell `version` (0.1.x) over this 0.0.x deployment
        (`nemoclaw-sim upgrade-openshell`): returns `nemoclaw_sim.reinstall.Reinstall` (old versions,
        database backup, the 0.0.x containers left unadopted). Raises `deploy.SimError` with the
        one-sentence refusal when the deployment is already 0.1.x or the version is unknown."""
        from nemoclaw_sim.reinstall import upgrade_openshell

        return upgrade_openshell(self.home, version)

    def stop_gateway(self) -> None:
        deploy.stop_gateway(self.deployment)

    def start_gateway(self) -> None:
        deploy.start_gateway(self.deployment)

    def add_sandbox(self, name: str, agent_version: str | None = None, stopped: bool = False,
                    gateway_port: int | None = None, pinned: bool = False, stop_how: str | None = None) -> None:
        deploy.sandbox_add(self.home, name, agent_version=agent_version, stopped=stopped, gateway_port=gateway_port,
                           pinned=pinned, stop_how=stop_how)

    def stop_sandbox(self, name: str, how: str | None = None) -> None:
        """`openshell sandbox stop` where the gateway has it (phase Stopped), else a bare `docker
        stop`; how="docker"|"kill" stops it behind the gateway's back (phase Error)."""
        deploy.sandbox_stop(self.home, name, how)

    def start_sandbox(self, name: str, how: str | None = None) -> None:
        deploy.sandbox_start(self.home, name, how)

    def set_fault(self, op: str, message: str, code: str = "Internal", sticky: bool = False) -> None:
        deploy.fault_set(self.home, op, message, code, sticky)

    def clear_faults(self) -> None:
        deploy.fault_clear(self.home)

    def marker(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "runtime.json").read_text())

    def registry(self) -> dict[str, Any]:
        return json.loads(self.paths.registry_file.read_text())
