"""NemoClaw's registry end to end (docs/reference/nemoclaw-registry.md): per-port roots, fields we
do not own kept through every command that writes, the identity fingerprint checked before a
rebuild and moved to the recreated sandbox, pinned sandboxes. Real `nemoclaw` processes against
the stand-in (which writes today's rows: fingerprint, gateway fields, per-port roots, pinned
`fromImage`) on the real Docker engine."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.e2e.test_upgrade_e2e import AGENT, NEW, OLD, container, containers_state, nemoclaw, personalise, state_tree

pytestmark = pytest.mark.docker

EMPTY = {"sandboxes": 0, "agent_version": OLD}
UNKNOWN_ROW_FIELDS = {"pendingRouteReservation": None, "futureThing": {"a": [1, 2.5, None, "ü"]}}
UNKNOWN_TOP = {"schemaVersion": 7, "somethingNew": ["x", {"y": True}]}


@pytest.fixture
def names(unique):
    return lambda *suffixes: [f"u{unique}{s}" for s in suffixes]


def root(sim, port: int | None) -> Path:
    nc = sim.home / ".nemoclaw"
    return nc / "sandboxes.json" if port is None else nc / "gateways" / str(port) / "sandboxes.json"


def live_id(sim, name: str) -> str:
    out = re.sub(r"\x1b\[[0-9;]*m", "", sim.openshell("sandbox", "get", name).stdout)
    return next(line.split("Id:", 1)[1].strip() for line in out.splitlines() if "Id:" in line)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def add_unknowns(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc.update(UNKNOWN_TOP)
    for row in doc["sandboxes"].values():
        row.update(UNKNOWN_ROW_FIELDS)
    path.write_text(json.dumps(doc, indent=2))
    return doc


@pytest.mark.parametrize("sim", [EMPTY], indirect=True)
def test_a_per_port_row_is_found_and_backed_up_and_no_registry_is_written(sim, docker_client, names):
    a, p = names("a", "p")
    sim.add_sandbox(a, agent_version=NEW)
    sim.add_sandbox(p, agent_version=NEW, gateway_port=8081)
    files = {port: root(sim, port).read_bytes() for port in (None, 8081)}
    assert p in json.loads(files[8081])["sandboxes"] and p not in json.loads(files[None])["sandboxes"]

    res = nemoclaw(sim, "backup-all")

    assert res.returncode == 0, res.stdout + res.stderr
    assert "  Pre-upgrade backup: 2 backed up, 0 failed, 0 skipped" in res.stdout.splitlines()
    assert any(line.startswith(f"  ✓ {p}: ") for line in res.stdout.splitlines())
    assert len(list((sim.home / ".nemoclaw" / "rebuild-backups" / p).iterdir())) == 1
    assert {port: root(sim, port).read_bytes() for port in (None, 8081)} == files
    check = nemoclaw(sim, "upgrade-sandboxes", "--check")
    assert (check.returncode, check.stdout) == (0, "  All sandboxes are up to date.\n"), check.stderr


@pytest.mark.parametrize("sim", [EMPTY], indirect=True)
def test_a_rebuild_keeps_every_field_it_does_not_own_and_the_fingerprint_follows_the_new_id(sim, docker_client, names):
    a, p = names("a", "p")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(p, agent_version=OLD, gateway_port=8081)
    personalise(docker_client, p)
    before = {port: add_unknowns(root(sim, port)) for port in (None, 8081)}
    old_id = live_id(sim, p)
    assert before[8081]["sandboxes"][p]["lifecycleLiveIdentityFingerprint"] == sha(old_id)
    tree = state_tree(docker_client, p)

    res = nemoclaw(sim, "rebuild-sandbox", p)
    assert res.returncode == 0, res.stdout + res.stderr
    new_id = live_id(sim, p)
    assert new_id != old_id and state_tree(docker_client, p) == tree
    after = json.loads(root(sim, 8081).read_text())
    expected = json.loads(json.dumps(before[8081]))
    expected["sandboxes"][p].update(agentVersion=NEW, lifecycleLiveIdentityFingerprint=sha(new_id))
    assert after == expected  # only our two fields changed; every unknown field and key kept
    assert json.loads(root(sim, None).read_text()) == before[None]  # the other root untouched

    res = nemoclaw(sim, "upgrade-sandboxes", "--yes")  # the other writer: an upgrade's rebuild
    assert res.returncode == 0, res.stdout + res.stderr
    after = json.loads(root(sim, None).read_text())
    expected = json.loads(json.dumps(before[None]))
    expected["sandboxes"][a].update(agentVersion=NEW, lifecycleLiveIdentityFingerprint=sha(live_id(sim, a)))
    assert after == expected


@pytest.mark.parametrize("sim", [EMPTY], indirect=True)
def test_a_fingerprint_mismatch_refuses_that_sandbox_with_nothing_changed_and_the_others_go_on(sim, docker_client, names):
    a, b = names("a", "b")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(b, agent_version=OLD)
    path = root(sim, None)
    doc = json.loads(path.read_text())
    doc["sandboxes"][a]["lifecycleLiveIdentityFingerprint"] = sha("a-sandbox-that-was-replaced")
    path.write_text(json.dumps(doc, indent=2))
    registry_before = path.read_bytes()
    untouched = containers_state(docker_client, [a])
    a_id = live_id(sim, a)

    res = nemoclaw(sim, "upgrade-sandboxes", "--yes")

    assert res.returncode == 1, res.stdout + res.stderr
    refusal = next(line for line in res.stderr.splitlines() if f"Refusing to touch sandbox '{a}'" in line)
    assert sha("a-sandbox-that-was-replaced") in refusal and a_id in refusal and sha(a_id) in refusal
    assert "nothing of it was changed" in refusal
    assert f"  ✓ Sandbox '{b}' rebuilt successfully" in res.stdout.splitlines()
    assert containers_state(docker_client, [a]) == untouched  # not deleted, not recreated
    assert not (sim.home / ".nemoclaw" / "rebuild-backups" / a).exists()  # not even backed up
    doc_after = json.loads(path.read_text())
    assert doc_after["sandboxes"][a] == json.loads(registry_before)["sandboxes"][a]
    assert doc_after["sandboxes"][b]["agentVersion"] == NEW


@pytest.mark.parametrize("sim", [EMPTY], indirect=True)
def test_a_pinned_sandbox_is_listed_with_its_digest_never_work_and_never_rebuilt_automatically(sim, docker_client, names):
    a, pin = names("a", "pin")
    sim.add_sandbox(a, agent_version=NEW)
    sim.add_sandbox(pin, agent_version=OLD, pinned=True)
    recorded = json.loads(root(sim, None).read_text())["sandboxes"][pin]["fromImage"]
    repo, digest = recorded.split("@")
    assert digest.startswith("sha256:")
    untouched = containers_state(docker_client, [pin])

    check = nemoclaw(sim, "upgrade-sandboxes", "--check")
    assert check.returncode == 0, check.stdout + check.stderr  # pinned is not work
    assert check.stdout.splitlines() == [
        "",
        "  Pinned sandboxes (kept on their image digest, not rebuilt automatically; `nemoclaw rebuild-sandbox NAME` "
        "rebuilds one from the same digest):",
        f"    {pin}  {repo}@{digest}  (pinned)",
        "  All other sandboxes are up to date; pinned sandboxes keep their digest.",
    ]
    res = nemoclaw(sim, "upgrade-sandboxes", "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Sandbox '{pin}'" not in res.stdout
    assert containers_state(docker_client, [pin]) == untouched


@pytest.mark.parametrize("sim", [EMPTY], indirect=True)
def test_a_row_named_unlike_its_key_is_an_error_for_that_sandbox_in_check_and_rebuild(sim, docker_client, names):
    a, b = names("a", "b")
    sim.add_sandbox(a, agent_version=NEW)
    sim.add_sandbox(b, agent_version=NEW)
    path = root(sim, None)
    doc = json.loads(path.read_text())
    doc["sandboxes"][b]["name"] = "someone-else"
    path.write_text(json.dumps(doc))
    problem = (f"its registry entry '{b}' in {path} names sandbox 'someone-else'; make the key and its \"name\" the "
               "same (the sandbox's name in OpenShell) and rerun")
    check = nemoclaw(sim, "upgrade-sandboxes", "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"  ✗ {b}: {problem}" in check.stderr.splitlines()
    res = nemoclaw(sim, "rebuild-sandbox", b)
    assert res.returncode == 1
    assert f"  Sandbox '{b}' cannot be used: {problem}." in res.stderr.splitlines()
    assert container(docker_client, b).status == "running"


@pytest.mark.parametrize("sim", [EMPTY], indirect=True)
def test_backups_restore_refuses_a_sandbox_whose_id_is_not_the_registered_one(sim, docker_client, names):
    (a,) = names("a")
    sim.add_sandbox(a, agent_version=NEW)
    personalise(docker_client, a)
    assert nemoclaw(sim, "backup-all").returncode == 0
    marker = f"echo changed-after-the-backup > {AGENT.dir}/workspace/notes.txt"
    rc, _ = container(docker_client, a).exec_run(["sh", "-c", marker], user="root")
    assert rc == 0
    path = root(sim, None)
    doc = json.loads(path.read_text())
    doc["sandboxes"][a]["lifecycleLiveIdentityFingerprint"] = sha("another-sandbox")
    path.write_text(json.dumps(doc))
    tree = state_tree(docker_client, a)

    res = nemoclaw(sim, "backups", "restore", a)

    assert res.returncode == 1, res.stdout + res.stderr
    [line] = [ln for ln in res.stderr.splitlines() if ln.startswith(f"  Refusing to touch sandbox '{a}'")]
    assert sha("another-sandbox") in line and live_id(sim, a) in line
    assert line.endswith(" If you recreated it yourself, rerun with --recreated.")
    assert state_tree(docker_client, a) == tree  # nothing written into it

    res = nemoclaw(sim, "backups", "restore", a, "--recreated")  # the user says it is theirs
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(path.read_text())["sandboxes"][a]["lifecycleLiveIdentityFingerprint"] == sha(live_id(sim, a))
    assert state_tree(docker_client, a) != tree  # the backup's notes.txt is back


@pytest.mark.parametrize("sim", [EMPTY], indirect=True)
def test_a_rebuild_killed_before_its_restore_is_finished_and_the_fingerprint_follows(sim, docker_client, names):
    (p,) = names("p")
    sim.add_sandbox(p, agent_version=OLD, gateway_port=8081)
    before = add_unknowns(root(sim, 8081))
    res = nemoclaw(sim, "rebuild-sandbox", p, env={"NEMOCLAW_TEST_KILL_AT": "rebuild-sandbox:restore:enter"})
    assert res.returncode == -9, res.stdout + res.stderr
    assert json.loads(root(sim, 8081).read_text()) == before  # recreated, not yet recorded

    up = nemoclaw(sim, "upgrade-sandboxes", "--yes")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "  Resuming interrupted run " in up.stdout
    expected = json.loads(json.dumps(before))
    expected["sandboxes"][p].update(agentVersion=NEW, lifecycleLiveIdentityFingerprint=sha(live_id(sim, p)))
    assert json.loads(root(sim, 8081).read_text()) == expected


@pytest.mark.parametrize("sim", [EMPTY], indirect=True)
def test_rebuilding_a_pinned_sandbox_when_asked_uses_the_same_digest(sim, docker_client, names):
    """`nemoclaw <name> rebuild` of a pinned sandbox recreates it from its recorded
    `repository@sha256:<digest>`, not from the expected version's tag. The stand-in's images
    are built locally and have no registry digest, so Docker cannot create from that reference:
    the create fails and the rebuild rolls back to the image the sandbox ran, with its files."""
    (pin,) = names("pin")
    sim.add_sandbox(pin, agent_version=OLD, pinned=True)
    personalise(docker_client, pin)
    tree = state_tree(docker_client, pin)
    recorded = json.loads(root(sim, None).read_text())["sandboxes"][pin]["fromImage"]
    previous = container(docker_client, pin).attrs["Config"]["Image"]

    res = nemoclaw(sim, pin, "rebuild", "--yes")

    assert f"    Target:  ? ({recorded})" in res.stdout.splitlines(), res.stdout + res.stderr
    assert f"Creating sandbox '{pin}' from {recorded} failed" in res.stderr
    assert res.returncode == 1
    assert container(docker_client, pin).attrs["Config"]["Image"] == previous
    assert state_tree(docker_client, pin) == tree
