"""`nemoclaw migrate-openshell` end to end on the real Docker engine: three sandboxes (one Stopped,
one with a file outside the agent's state dirs) carried from a 0.0.116 stand-in across the user's
reinstall to 0.1.5 (prepare, wait, finish); the rerun while waiting, the cross-line refusals,
--check at each stage, and `backup-all` on the result.

"Byte-identical" is checked from Docker's archive of each workload container's home (type, mode
and SHA-256 of every path but the agent's declared runtime files), which reads a Stopped sandbox
without starting it, before the first run and after the last.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from nemoclaw_sim.install import install_program
from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.adapters.openshell.cli import strip_ansi
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

OLD, NEW = "0.0.116", "0.1.5"
ROLE = "openshell.ai/isolation-role"
AGENT = load_agent("openclaw")
HOME = AGENT.home_dir
PLAN = ".nemoclaw/migrations/openshell-0.1.json"
NAMES = ("alpha", "beta", "gamma", "delta")


def reinstall(sim: SimEnv, version: str = NEW) -> None:
    """The user's reinstall of OpenShell (0.0.x gateway removed, 0.1.x CLI and gateway, fresh DB)."""
    sim.upgrade_openshell(version)


def nemoclaw(sim: SimEnv, *args: str, env: dict[str, str] | None = None):
    return sim.run(["nemoclaw", *args], env={**sim.env, "NO_COLOR": "1", **(env or {})}, timeout=600)


def containers(sim: SimEnv, docker_client, name: str) -> list:
    own = f"nemoclaw-sim/deployment={sim.deployment.deployment_id}"
    return [c for c in docker_client.containers.list(all=True, filters={"label": [own, f"openshell.ai/sandbox-name={name}"]})
            if c.labels.get("openshell.ai/sandbox-name") == name]


def workload(sim: SimEnv, docker_client, name: str):
    found = [c for c in containers(sim, docker_client, name) if c.labels.get(ROLE) != "supervisor"]
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def home_tree(container) -> dict[str, str]:
    """Every path of the sandbox home from Docker's archive (a stopped container is not started)."""
    stream, _ = container.get_archive(HOME)
    tar = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
    base = HOME.rstrip("/").rsplit("/", 1)[-1]
    out: dict[str, str] = {}
    for m in tar.getmembers():
        rel = m.name[len(base):].lstrip("/")
        if any(rel == e or rel.startswith(e + "/") for e in AGENT.home_excludes):
            continue
        if m.isfile():
            digest = hashlib.sha256(tar.extractfile(m).read()).hexdigest()
            out[rel] = f"F {m.mode & 0o7777:o} {digest}"
        elif m.isdir():
            out[rel] = f"D {m.mode & 0o7777:o}"
        elif m.issym():
            out[rel] = f"L {m.linkname}"
        else:
            out[rel] = f"? {m.type}"
    return out


def sh(container, script: str) -> str:
    rc, out = container.exec_run(["sh", "-c", script], user="0")
    assert rc == 0, out
    return out.decode()


def phase(sim: SimEnv, name: str) -> str | None:
    res = sim.openshell("sandbox", "get", *(["--workspace", "default"] if sim.deployment.cli_version.startswith("0.1.") else []), name)
    for line in strip_ansi(res.stdout).splitlines():
        if line.strip().startswith("Phase:"):
            return line.split(":", 1)[1].strip()
    return None


def registry_rows(sim: SimEnv) -> dict:
    return sim.registry()["sandboxes"]


@pytest.fixture(scope="module")
def host(tmp_path_factory, docker_client):
    """A 0.0.116 host with three registered sandboxes: alpha (running), beta (Stopped), gamma
    (running, a file outside the agent's state dirs); and delta, in phase Error (its container
    stopped behind the gateway's back); each personalised."""
    sim = SimEnv((tmp_path_factory.mktemp("migrate") / "home").resolve())
    sim.home.mkdir()
    try:
        sim.up(cli=OLD, gateway=OLD, sandboxes=0, health_port=0)
        for name in NAMES:
            sim.add_sandbox(name)
            sh(workload(sim, docker_client, name),
               f"cd {AGENT.dir} && printf 'notes of %s\\n' {name} > workspace/notes.txt && chmod 600 workspace/notes.txt"
               f" && mkdir -p memory/deep && head -c 200000 /dev/urandom > memory/deep/blob.bin")
        sh(workload(sim, docker_client, "gamma"),
           f"mkdir -p {HOME}/projects/site && echo 'outside the state dirs' > {HOME}/projects/site/README.md"
           f" && head -c 50000 /dev/urandom > {HOME}/projects/site/data.bin && chmod 640 {HOME}/projects/site/data.bin")
        sim.stop_sandbox("beta")
        sim.stop_sandbox("delta", how="docker")
        yield sim
    finally:
        if sim.paths.deployment_file.exists():
            sim.down()


def test_three_sandboxes_move_from_0_0_116_to_0_1_5(host, docker_client):
    sim = host
    assert phase(sim, "beta") == "Stopped" and phase(sim, "delta") == "Error"
    before = {n: home_tree(workload(sim, docker_client, n)) for n in NAMES}
    assert "projects/site/README.md" in before["gamma"]
    rows_before = registry_rows(sim)
    images = {n: workload(sim, docker_client, n).attrs["Config"]["Image"] for n in before}

    check = nemoclaw(sim, "migrate-openshell", "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"  4 sandbox(es) on OpenShell {OLD} (0.0.x) to migrate to 0.1: alpha, beta, gamma, delta." in check.stdout.splitlines()

    # Prepare: back up, record the plan, delete on 0.0.116, wait. Exit 0 with the next steps.
    prep = nemoclaw(sim, "migrate-openshell", "--yes")
    assert prep.returncode == 0, prep.stdout + prep.stderr
    out = prep.stdout.splitlines()
    assert "  Waiting for OpenShell 0.1. Next:" in out
    assert f"    1. Remove the OpenShell {OLD} gateway (stop it; uninstall the 0.0.x package)." in out
    assert "    2. Install OpenShell 0.1.x: the CLI and the gateway, from the same release." in out
    assert ("    3. Run `nemoclaw migrate-openshell` again: it recreates these sandboxes on 0.1.x from their backups."
            in out)
    for n in before:
        assert containers(sim, docker_client, n) == [], f"{n} was not deleted"
    plan = json.loads((sim.home / PLAN).read_text())
    assert plan["stage"] == "waiting"
    assert {s["name"]: (s["state"], s["phase"]) for s in plan["sandboxes"]} == {
        "alpha": ("deleted", None), "beta": ("deleted", "Stopped"), "gamma": ("deleted", None),
        "delta": ("deleted", "Error")}
    assert {s["name"]: s["row"] for s in plan["sandboxes"]} == rows_before

    waiting = nemoclaw(sim, "migrate-openshell", "--check")
    assert waiting.returncode == 1 and "  Waiting for OpenShell 0.1. Next:" in waiting.stdout.splitlines()
    assert json.loads((sim.home / PLAN).read_text()) == plan

    # Rerun while still on 0.0.x: exit 1, says what it waits for, changes nothing.
    again = nemoclaw(sim, "migrate-openshell", "--yes")
    assert again.returncode == 1, again.stdout + again.stderr
    assert (f"  The migration to OpenShell 0.1 is waiting for OpenShell 0.1, but the installed CLI and the running "
            f"gateway are still {OLD}. Nothing was changed.") in again.stderr.splitlines()
    assert json.loads((sim.home / PLAN).read_text()) == plan

    # The waiting plan shows in runs list, upgrade-sandboxes --check and gateway check.
    runs = nemoclaw(sim, "runs", "list")
    assert "A migration to OpenShell 0.1 is waiting" in runs.stdout
    up_check = nemoclaw(sim, "upgrade-sandboxes", "--check")
    assert up_check.returncode == 1 and "A migration to OpenShell 0.1 is waiting" in up_check.stdout
    gw = nemoclaw(sim, "gateway", "check")
    assert gw.returncode == 1 and "A migration to OpenShell 0.1 is waiting" in gw.stdout + gw.stderr

    # Half a reinstall (a 0.1.5 CLI, the 0.0.116 gateway still running) is refused, nothing changed.
    install_program(sim.bin, "openshell", NEW)
    try:
        mixed = nemoclaw(sim, "migrate-openshell", "--yes")
        assert mixed.returncode == 1, mixed.stdout + mixed.stderr
        err = mixed.stderr.splitlines()
        assert "  OpenShell gateway schema preflight failed before migrating sandboxes to OpenShell 0.1." in err
        assert any("are on different release lines" in line for line in err), mixed.stderr
        assert json.loads((sim.home / PLAN).read_text()) == plan
    finally:
        install_program(sim.bin, "openshell", OLD)

    reinstall(sim)

    check = nemoclaw(sim, "migrate-openshell", "--check")
    assert check.returncode == 1
    assert any(line.startswith("    beta  deleted on 0.0.x, kept in its backup; to recreate") for line in check.stdout.splitlines())

    fin = nemoclaw(sim, "migrate-openshell", "--yes")
    assert fin.returncode == 0, fin.stdout + fin.stderr
    assert f"  4 sandbox(es) migrated to OpenShell {NEW}; the backups are kept" in fin.stdout
    assert f"  Sandbox 'delta' was in phase Error on OpenShell {OLD}; it runs now." in fin.stdout.splitlines()
    assert "  ✓ Sandbox 'beta' recreated on OpenShell 0.1 from its backup and Stopped again" in fin.stdout.splitlines()
    assert not (sim.home / PLAN).exists()
    for n in before:
        box = workload(sim, docker_client, n)
        assert box.labels.get(ROLE) == "sandbox" and box.labels.get("openshell.ai/sandbox-workspace") == "default"
        assert box.attrs["Config"]["Image"] == images[n]
        assert home_tree(box) == before[n], f"{n}: the home differs from before the migration"
    assert [phase(sim, n) for n in NAMES] == ["Ready", "Stopped", "Ready", "Ready"]  # delta had running intent

    rows = registry_rows(sim)
    for n, row in rows.items():
        live = workload(sim, docker_client, n).labels["openshell.ai/sandbox-id"]
        assert row["lifecycleLiveIdentityFingerprint"] == hashlib.sha256(live.encode()).hexdigest()
        assert row["lifecycleLiveIdentityFingerprint"] != rows_before[n]["lifecycleLiveIdentityFingerprint"]
        same = {k: v for k, v in row.items() if k not in ("lifecycleLiveIdentityFingerprint", "agentVersion")}
        assert same == {k: v for k, v in rows_before[n].items() if k not in ("lifecycleLiveIdentityFingerprint", "agentVersion")}

    done = nemoclaw(sim, "migrate-openshell", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    backup = nemoclaw(sim, "backup-all")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert sum(1 for line in backup.stdout.splitlines() if line.strip().startswith("✓")) >= 4, backup.stdout
