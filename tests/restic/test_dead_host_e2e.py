"""A host that lost everything is recovered by `backups pull` + `rebuild-sandbox --from-backup`,
end to end: the OpenShell stand-in on the real Docker engine, a real restic and a REST server on
127.0.0.1 (`rclone serve restic`).

Host A backs up (backup-all copies the backup off-host) and dies: its gateway, its sandbox
containers and its home are gone. Host B is a fresh home with NemoClaw and OpenShell installed
(a running gateway) and no ~/.nemoclaw at all; with the same repository and password, the two
commands of the README's "Off-host copies" section bring the sandbox back: its files
byte-identical, its registry row the one A had (docs/backups.md, "A dead host")."""

from __future__ import annotations

import json
import re
import shutil
import uuid

import pytest

from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.adapters.nemoclaw_registry import fingerprint_of
from orchestrator.adapters.openshell.cli import strip_ansi
from tests.support.restic_repo import RestServer, make_setup
from tests.support.sandbox_tree import state_tree_script
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

AGENT = load_agent("openclaw")
NAME_LABEL = "openshell.ai/sandbox-name"
README_COMMANDS = "nemoclaw backups pull {name}\nnemoclaw rebuild-sandbox {name} --from-backup latest"


def _tree(docker_client, name: str) -> list[str]:
    (container,) = [c for c in docker_client.containers.list(filters={"label": f"{NAME_LABEL}={name}"})
                    if c.labels.get(NAME_LABEL) == name]
    rc, out = container.exec_run(["sh", "-c", state_tree_script(AGENT.dir, AGENT.state_dirs)], user="0")
    assert rc == 0, out
    return out.decode().splitlines()


def _readme_commands(name: str) -> list[list[str]]:
    """The two recovery commands exactly as the README's "Off-host copies" section shows them."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Off-host copies", 1)[1].split("\n## ", 1)[0]
    block = section.split("A dead host", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [ln.split("#", 1)[0].strip() for ln in block.splitlines() if ln.strip()]
    assert lines == README_COMMANDS.format(name="alpha").splitlines(), lines
    return [ln.replace("alpha", name).split() for ln in lines]


@pytest.mark.parametrize("sim", [{"sandboxes": 0}], indirect=True)
def test_a_dead_host_is_recovered_by_pull_and_rebuild_from_backup(sim, tmp_path, docker_client):
    name = f"r{uuid.uuid4().hex[:8]}"  # unique on the shared engine
    server = RestServer(tmp_path / "rest-data")
    server.start()
    try:
        a = make_setup(tmp_path / "a", location=server.url, home=sim.home)
        sim.add_sandbox(name)
        container = [c for c in docker_client.containers.list(filters={"label": f"{NAME_LABEL}={name}"})][0]
        container.exec_run(["sh", "-c", f"cd {AGENT.dir} && echo 'only on host A' > workspace/notes.txt && "
                                        "head -c 200000 /dev/urandom > workspace/blob.bin"], user="0")
        before = _tree(docker_client, name)
        row_a = sim.registry()["sandboxes"][name]
        env_a = {**sim.env, **a.env(), "PATH": f"{a.bin_dir}:{sim.env['PATH']}"}
        assert sim.run(["nemoclaw", "backups", "init-remote"], env=env_a).returncode == 0
        backed = sim.run(["nemoclaw", "backup-all"], env=env_a)
        assert backed.returncode == 0, backed.stdout + backed.stderr
        assert "copied off-host as snapshot" in backed.stdout

        # Host A dies: gateway, containers and home.
        sim.down()
        shutil.rmtree(sim.home)

        b = SimEnv((tmp_path / "home-b").resolve())
        b.home.mkdir()
        b.up(sandboxes=0)
        try:
            shutil.rmtree(b.home / ".nemoclaw", ignore_errors=True)  # nothing of NemoClaw's but the programs
            setup_b = make_setup(tmp_path / "b", location=server.url, home=b.home)
            shutil.copy(a.root / "password", setup_b.root / "password")
            env_b = {**b.env, **setup_b.env(NEMOCLAW_BACKUP_HOST="host-b"), "PATH": f"{setup_b.bin_dir}:{b.env['PATH']}"}
            for argv in _readme_commands(name):
                done = b.run(argv, env=env_b)
                assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
            assert _tree(docker_client, name) == before
            row_b = json.loads((b.home / ".nemoclaw" / "sandboxes.json").read_text())["sandboxes"][name]
            live = b.openshell("sandbox", "get", name).stdout
            new_id = re.search(r"^\s*Id:\s*(\S+)", strip_ansi(live), re.MULTILINE).group(1)
            assert row_b["lifecycleLiveIdentityFingerprint"] == fingerprint_of(new_id) != row_a["lifecycleLiveIdentityFingerprint"]
            assert {k: v for k, v in row_b.items() if k != "lifecycleLiveIdentityFingerprint"} == {
                k: v for k, v in row_a.items() if k != "lifecycleLiveIdentityFingerprint"}
            # The recovered host is an ordinary one now: its next backup-all backs the sandbox up.
            again = b.run(["nemoclaw", "backup-all"], env=env_b)
            assert again.returncode == 0, again.stdout + again.stderr
            assert not any(a.password in line for line in setup_b.argvs() + a.argvs())
        finally:
            b.down()
    finally:
        server.stop()
