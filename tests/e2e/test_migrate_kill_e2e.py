"""`nemoclaw migrate-openshell` killed (SIGKILL) after each state of both phases, and of --abort,
is finished by the next run: no sandbox twice, none lost, every file intact (the kill points of
the durable-runs tests: NEMOCLAW_TEST_KILL_AT at state boundaries, the restore pause point).

Two shared hosts keep this fast: a 0.0.116 one for the prepare phase, put back after each test by
`--abort` (itself checked each time); and one reinstalled to 0.1.5 for the finish phase, put back
after each test to the moment after the reinstall (its 0.1.x sandboxes deleted, the waiting plan
and the registry as they were then; the backups never changed).
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.e2e.test_migrate_e2e import (
    AGENT, NEW, OLD, PLAN, containers, home_tree, nemoclaw, phase, reinstall, sh, workload,
)
from tests.e2e.test_resume_e2e import killed_at_pause, newest_run
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

KILL_ENV = "NEMOCLAW_TEST_KILL_AT"
NAMES = ("alpha", "beta")  # beta is Stopped


def make_host(tmp_path_factory, docker_client, tag: str) -> SimEnv:
    sim = SimEnv((tmp_path_factory.mktemp(tag) / "home").resolve())
    sim.home.mkdir()
    sim.up(cli=OLD, gateway=OLD, sandboxes=0, health_port=0)
    for name in NAMES:
        sim.add_sandbox(name)
        sh(workload(sim, docker_client, name),
           f"cd {AGENT.dir} && printf 'notes of %s\\n' {name} > workspace/notes.txt"
           f" && mkdir -p {AGENT.home_dir}/elsewhere && echo {name} > {AGENT.home_dir}/elsewhere/file.txt")
    sim.stop_sandbox("beta")
    return sim


def trees(sim: SimEnv, docker_client) -> dict[str, dict[str, str]]:
    return {n: home_tree(workload(sim, docker_client, n)) for n in NAMES}


def plan_of(sim: SimEnv) -> dict:
    return json.loads((sim.home / PLAN).read_text())


def killed(sim: SimEnv, point: str, *args: str) -> str:
    res = nemoclaw(sim, "migrate-openshell", "--yes", *args, env={KILL_ENV: point})
    assert res.returncode == -signal.SIGKILL, res.stdout + res.stderr
    return newest_run(sim)


def assert_back(sim: SimEnv, docker_client, before: dict) -> None:
    """Each sandbox once, in its own phase, its home as before."""
    for n in NAMES:
        assert len([c for c in containers(sim, docker_client, n) if c.labels.get("openshell.ai/isolation-role") != "supervisor"]) == 1
    assert trees(sim, docker_client) == before
    assert phase(sim, "beta") == "Stopped" and phase(sim, "alpha") == "Ready"


# --- prepare (and --abort) ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def old_host(tmp_path_factory, docker_client):
    sim = make_host(tmp_path_factory, docker_client, "migrate-prepare")
    try:
        yield sim, trees(sim, docker_client)
    finally:
        if sim.paths.deployment_file.exists():
            sim.down()


# The states after which the world differs most (backups committed; about to delete, or all
# deleted): a host each. Every other state is in the chain below.
PREPARE_POINTS = ["commit:leave", "delete:enter", "delete:leave"]


@pytest.mark.parametrize("point", PREPARE_POINTS)
def test_a_prepare_killed_after_a_state_is_finished_by_the_next_run(old_host, docker_client, point):
    sim, before = old_host
    run_id = killed(sim, f"migrate-openshell:{point}")

    listed = json.loads(nemoclaw(sim, "runs", "list", "--json").stdout)
    assert next(r for r in listed if r["run"] == run_id)["status"] == "interrupted"
    check = nemoclaw(sim, "upgrade-sandboxes", "--check")
    assert check.returncode == 1 and f"Interrupted run {run_id} (migrate-openshell" in check.stdout

    again = nemoclaw(sim, "migrate-openshell", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"  Resuming interrupted run {run_id} (migrate-openshell" in again.stdout
    assert "  Waiting for OpenShell 0.1. Next:" in again.stdout.splitlines()
    plan = plan_of(sim)
    assert plan["stage"] == "waiting" and [s["state"] for s in plan["sandboxes"]] == ["deleted", "deleted"]
    assert all(containers(sim, docker_client, n) == [] for n in NAMES)

    aborted = nemoclaw(sim, "migrate-openshell", "--abort")
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert "  2 sandbox(es) put back on OpenShell" in aborted.stdout
    assert not (sim.home / PLAN).exists()
    assert_back(sim, docker_client, before)


def killed_in_a_chain(sim: SimEnv, points: list[str], *args: str) -> str:
    """Kill a run at the first point, then each next run (which resumes the killed one first) at
    the next point: every kill is finished by the run after it, up to the last. Returns the
    first run's id. A run that ends instead of reaching its point fails the test."""
    first = None
    for point in points:
        res = nemoclaw(sim, "migrate-openshell", *args, env={KILL_ENV: point})
        assert res.returncode == -signal.SIGKILL, f"{point}: {res.stdout}{res.stderr}"
        first = first or newest_run(sim)
    assert first is not None
    return first


# Every other state of the prepare phase, in order: one chain of kills, each finished by the next run.
PREPARE_CHAIN = [f"migrate-openshell:{p}" for p in (
    "phase:leave", "unpause:leave", "enumerate:leave", "snapshot:leave", "commit:enter", "replicate:leave",
    "plan:enter", "plan:leave", "confirm:leave")]


def test_a_prepare_killed_after_every_other_state_in_turn_is_finished(old_host, docker_client):
    sim, before = old_host
    run_id = killed_in_a_chain(sim, PREPARE_CHAIN, "--yes")
    again = nemoclaw(sim, "migrate-openshell", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"  Resuming interrupted run {run_id} (migrate-openshell" in again.stdout
    assert plan_of(sim)["stage"] == "waiting" and plan_of(sim)["run"] == run_id
    aborted = nemoclaw(sim, "migrate-openshell", "--abort")
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert_back(sim, docker_client, before)


def test_one_deleted_then_killed_goes_on_with_the_other(old_host, docker_client):
    sim, before = old_host
    run_id = killed_at_pause(sim, "migrate_delete:alpha", "migrate-openshell", "--yes").split(".")[0]
    plan = plan_of(sim)
    assert [s["state"] for s in plan["sandboxes"]] == ["deleted", "backed_up"] and plan["stage"] == "preparing"
    again = nemoclaw(sim, "migrate-openshell", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"  Resuming interrupted run {run_id}" in again.stdout
    assert "Deleting sandbox 'alpha'" not in again.stdout  # not twice
    assert plan_of(sim)["stage"] == "waiting"
    aborted = nemoclaw(sim, "migrate-openshell", "--abort")
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert_back(sim, docker_client, before)


def test_an_abort_killed_mid_restore_is_finished_by_the_next_abort(old_host, docker_client):
    sim, before = old_host
    prep = nemoclaw(sim, "migrate-openshell", "--yes")
    assert prep.returncode == 0, prep.stdout + prep.stderr
    run_id = killed_at_pause(sim, "restore:beta", "migrate-openshell", "--abort").split(".")[0]
    assert plan_of(sim)["stage"] == "aborting"
    again = nemoclaw(sim, "migrate-openshell", "--abort")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"  Resuming interrupted run {run_id}" in again.stdout
    assert not (sim.home / PLAN).exists()
    assert_back(sim, docker_client, before)


def test_abort_with_nothing_waiting_and_a_declined_prompt_change_nothing(old_host, docker_client):
    sim, before = old_host
    nothing = nemoclaw(sim, "migrate-openshell", "--abort")
    assert nothing.returncode == 1
    assert "No migration to OpenShell 0.1 is waiting: there is nothing to abort." in nothing.stderr
    no_tty = nemoclaw(sim, "migrate-openshell")  # stdin is not a terminal and no --yes
    assert no_tty.returncode == 1, no_tty.stdout + no_tty.stderr
    assert "No terminal to confirm on (pass --yes): no sandbox was deleted" in no_tty.stderr
    assert not (sim.home / PLAN).exists()
    assert_back(sim, docker_client, before)


def test_an_image_built_from_a_dockerfile_stops_the_prepare_until_image_names_a_replacement(old_host, docker_client):
    """0.1.x no longer builds Dockerfiles (OS#3214): a sandbox on an image 0.0.x built from one
    (`openshell/sandbox-from:<ts>`) cannot be recreated there from it; the prepare says which flag
    fixes it and deletes nothing, and with that flag the plan records the replacement."""
    sim, before = old_host
    image = workload(sim, docker_client, "alpha").attrs["Config"]["Image"]
    built = "openshell/sandbox-from:1733600000"
    docker_client.images.get(image).tag(built)
    sim.openshell("sandbox", "create", "--name", "dock", "--from", built)
    reg = sim.registry()
    reg["sandboxes"]["dock"] = {**reg["sandboxes"]["alpha"], "name": "dock"}
    reg["sandboxes"]["dock"].pop("lifecycleLiveIdentityFingerprint", None)
    sim.paths.registry_file.write_text(json.dumps(reg, indent=2))
    try:
        refused = nemoclaw(sim, "migrate-openshell", "--yes")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert (f"'dock' runs {built}, which OpenShell 0.0.x built from a Dockerfile; OpenShell 0.1 does not build "
                "Dockerfiles: build and tag that image yourself and pass --image dock=REF") in refused.stderr
        assert not (sim.home / PLAN).exists()
        assert_back(sim, docker_client, before)
        assert len(containers(sim, docker_client, "dock")) == 1

        check = nemoclaw(sim, "migrate-openshell", "--yes", "--image", f"dock={image}", env={KILL_ENV: "migrate-openshell:plan:leave"})
        assert check.returncode == -signal.SIGKILL, check.stdout + check.stderr
        entry = next(s for s in plan_of(sim)["sandboxes"] if s["name"] == "dock")
        assert entry["image"] == built and entry["new_image"] == image and entry["state"] == "backed_up"
        assert all(len(containers(sim, docker_client, n)) == 1 for n in (*NAMES, "dock"))  # nothing deleted yet
        finished = nemoclaw(sim, "migrate-openshell", "--yes")  # the resumed prepare deletes; then abort
        assert finished.returncode == 0, finished.stdout + finished.stderr
        aborted = nemoclaw(sim, "migrate-openshell", "--abort")
        assert aborted.returncode == 0, aborted.stdout + aborted.stderr
        assert_back(sim, docker_client, before)
    finally:
        sim.openshell("sandbox", "delete", "dock")
        reg = sim.registry()
        reg["sandboxes"].pop("dock", None)
        sim.paths.registry_file.write_text(json.dumps(reg, indent=2))
        docker_client.images.remove(built)


def test_on_a_terminal_it_asks_and_a_no_deletes_nothing(old_host, docker_client):
    import os
    import pty
    import shutil

    sim, before = old_host
    main, child = pty.openpty()
    os.write(main, b"n\n")  # the answer waits in the terminal's input until the prompt reads it
    exe = shutil.which("nemoclaw", path=sim.env["PATH"])
    res = subprocess.run([exe, "migrate-openshell"], env={**sim.env, "NO_COLOR": "1"}, stdin=child,
                         capture_output=True, text=True, timeout=600)
    os.close(child)
    os.close(main)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "  Delete these 2 sandbox(es) from OpenShell 0.0.116 now? They are recreated from their backups" in res.stdout
    assert "  Not confirmed: no sandbox was deleted; the backups are kept" in res.stderr
    assert not (sim.home / PLAN).exists()
    assert list((sim.home / PLAN).parent.glob("openshell-0.1.*.declined.json"))
    assert_back(sim, docker_client, before)


# --- finish -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def new_host(tmp_path_factory, docker_client):
    sim = make_host(tmp_path_factory, docker_client, "migrate-finish")
    try:
        before = trees(sim, docker_client)
        prep = nemoclaw(sim, "migrate-openshell", "--yes")
        assert prep.returncode == 0, prep.stdout + prep.stderr
        saved = {p: p.read_bytes() for p in (sim.home / PLAN, sim.paths.registry_file)}
        reinstall(sim)
        yield sim, before, saved
    finally:
        if sim.paths.deployment_file.exists():
            sim.down()


def reset_to_after_the_reinstall(sim: SimEnv, saved: dict) -> None:
    for n in NAMES:
        sim.openshell("sandbox", "delete", "--workspace", "default", n)
    for path, data in saved.items():
        path.write_bytes(data)
    for kept in (sim.home / PLAN).parent.glob("openshell-0.1.*.done.json"):
        kept.unlink()


# The second sandbox (beta, Stopped) about to be created, and Stopped again but not recorded; the
# first recorded (its plan entry done); plus the restore upload under way (the pause point below).
# Every other state is in the chain further down.
FINISH_POINTS = ["migrate-sandbox:create:enter:2", "migrate-sandbox:stop:leave:2", "migrate-sandbox:record:leave"]


@pytest.mark.parametrize("point", FINISH_POINTS + ["restore:beta"])
def test_a_finish_killed_after_a_state_is_finished_by_the_next_run(new_host, docker_client, point):
    sim, before, saved = new_host
    try:
        if point.startswith("restore:"):
            run_id = killed_at_pause(sim, point, "migrate-openshell", "--yes").split(".")[0]
        else:
            run_id = killed(sim, point)
        again = nemoclaw(sim, "migrate-openshell", "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"  Resuming interrupted run {run_id} (migrate-" in again.stdout
        assert not (sim.home / PLAN).exists()
        assert_back(sim, docker_client, before)
        assert nemoclaw(sim, "migrate-openshell", "--check").returncode == 0
    finally:
        reset_to_after_the_reinstall(sim, saved)


FINISH_CHAIN = ["migrate-openshell:phase:leave", "migrate-openshell:items:leave", *(f"migrate-sandbox:{p}" for p in (
    "registry:leave", "preflight:leave", "target:leave", "create:leave", "wait:leave", "restore:leave",
    "verify:leave", "stop:enter")), "migrate-openshell:report:enter", "migrate-openshell:report:leave"]


def test_a_finish_killed_after_every_other_state_in_turn_is_finished(new_host, docker_client):
    sim, before, saved = new_host
    try:
        run_id = killed_in_a_chain(sim, FINISH_CHAIN, "--yes")
        again = nemoclaw(sim, "migrate-openshell", "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"  Resuming interrupted run {run_id} (migrate-openshell" in again.stdout
        assert not (sim.home / PLAN).exists()
        assert_back(sim, docker_client, before)
    finally:
        reset_to_after_the_reinstall(sim, saved)


def test_a_sandbox_that_fails_is_named_kept_in_its_backup_and_retried_by_the_next_run(new_host, docker_client):
    sim, before, saved = new_host
    try:
        sim.set_fault("create", "simulated create failure", code="Internal")  # the next create only
        first = nemoclaw(sim, "migrate-openshell", "--yes")
        assert first.returncode == 1, first.stdout + first.stderr
        assert ("  1 sandbox(es) not recreated yet: alpha. Their backups are kept; run `nemoclaw migrate-openshell` "
                "again to retry them.") in first.stderr.splitlines()
        plan = plan_of(sim)
        assert {s["name"]: s["state"] for s in plan["sandboxes"]} == {"alpha": "deleted", "beta": "migrated"}
        retry = nemoclaw(sim, "migrate-openshell", "--yes")
        assert retry.returncode == 0, retry.stdout + retry.stderr
        assert "Recreating sandbox 'beta'" not in retry.stdout  # not twice
        assert not (sim.home / PLAN).exists()
        assert_back(sim, docker_client, before)
    finally:
        sim.clear_faults()
        reset_to_after_the_reinstall(sim, saved)


def test_on_0_1_the_0_0_cli_back_is_refused_and_abort_is_too_late(new_host, docker_client):
    sim, before, saved = new_host
    from nemoclaw_sim.install import install_program

    install_program(sim.bin, "openshell", OLD)
    try:
        mixed = nemoclaw(sim, "migrate-openshell", "--yes")
        assert mixed.returncode == 1
        assert any("are on different release lines" in line for line in mixed.stderr.splitlines()), mixed.stderr
        assert (sim.home / PLAN).read_bytes() == saved[sim.home / PLAN]
    finally:
        install_program(sim.bin, "openshell", NEW)
    late = nemoclaw(sim, "migrate-openshell", "--abort")
    assert late.returncode == 1 and "can no longer be aborted" in late.stderr
    assert (sim.home / PLAN).read_bytes() == saved[sim.home / PLAN]
