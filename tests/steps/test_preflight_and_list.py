"""upstream's end-to-end drift cases (docs/reference/gateway-preflight.md) with real small programs on PATH, through the steps
(`preflight`, `sandbox_list`) and, where what matters is what the workflow does next, through backup-all."""

from __future__ import annotations

import io
import json
import re

import attrs
import pytest

from orchestrator.kernel.errors import Refusal, StepError
from orchestrator.engine.output import Reporter
from orchestrator.engine.run import run_workflow
from orchestrator.kernel.paths import Paths
from orchestrator.engine.loader import load_by_name

from tests.support.fakes import PROTOBUF_ERR, gateway_script
from tests.support.steputil import UPGRADE, make_ctx, run_step, stderr


def write_marker(pid: int, gateway_bin: str, port: int, **extra) -> None:
    state = Paths.from_env().gateway_state_dir
    state.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1, "pid": pid, "driver": "docker", "platform": "linux", "arch": "x64",
        "endpoint": f"http://127.0.0.1:{port}", "desiredEnvHash": "0" * 64, "gatewayBin": gateway_bin,
        "openshellVersion": "0.0.37", "dockerHost": None, "createdAt": "2026-05-28T10:09:17.605Z", **extra,
    }  # fmt: skip
    (state / "runtime.json").write_text(json.dumps(doc))


def refusal_text(exc: Refusal) -> str:
    return "\n".join(exc.diagnosis)


def test_case1_protobuf_mismatch_fails_closed(fake_openshell):
    fake_openshell.set_list(out="", err=PROTOBUF_ERR, rc=1)
    ctx = make_ctx()
    run_step("preflight", ctx)  # nothing drifts: CLI 0.0.37 and no gateway binary anywhere
    with pytest.raises(Refusal) as info:
        run_step("sandbox_list", ctx)
    text = refusal_text(info.value)
    assert info.value.reason == "protobuf_mismatch"
    assert re.search(r"protobuf|schema mismatch|invalid wire type", text, re.I)
    assert re.search(r"No sandbox data was changed|Refusing to trust OpenShell sandbox state", text)
    assert "  OpenShell output: " + PROTOBUF_ERR.strip() in info.value.diagnosis
    assert "sandbox_list" not in ctx.facts
    assert not fake_openshell.called("gateway select")  # a protobuf error is never "recovered"


def test_case1_backup_all_refuses_on_a_protobuf_mismatch_instead_of_skipping_the_sandbox(fake_openshell, home):
    """Upstream's bug: the undecodable list read as "no sandbox running", so backup-all skipped
    alpha as "not running" and reported success. The whole workflow, in process: it must stop
    at the listing, before the snapshot step (the one that prints "Skipping 'alpha' (not running; ...")."""
    fake_openshell.set_list(out="", err=PROTOBUF_ERR, rc=1)
    (home / ".nemoclaw").mkdir()
    (home / ".nemoclaw" / "sandboxes.json").write_text(json.dumps({"sandboxes": {"alpha": {"name": "alpha", "agent": "openclaw"}}}))
    spec = load_by_name("backup-all", Paths(home))
    out = Reporter(stdout=io.StringIO(), stderr=io.StringIO())
    result = run_workflow(spec, {n: o.default for n, o in spec.options.items()}, paths=Paths(home), out=out)
    printed, diagnosis = out.stdout.getvalue(), out.stderr.getvalue()
    assert (result.terminal, result.exit_code, result.reason) == ("refused", 1, "protobuf_mismatch"), diagnosis
    assert "  OpenShell output: " + PROTOBUF_ERR.strip() in diagnosis.splitlines()
    assert "No sandbox data was changed" in diagnosis
    events = [json.loads(line) for line in (home / ".nemoclaw" / "runs" / f"{result.run_id}.jsonl").read_text().splitlines()]
    assert [e["state"] for e in events if e["event"] == "state_entered"] == ["registry", "preflight", "unpause", "enumerate"]
    assert not [line for line in (printed + diagnosis).splitlines() if line.startswith("  Skipping 'alpha'")]
    assert not (home / ".nemoclaw" / "rebuild-backups" / "alpha").exists()
    assert fake_openshell.called("sandbox list")
    assert not fake_openshell.called("gateway select")


def test_case3_live_marker_host_process_drift(fake_openshell, home, tmp_path, procs):
    (tmp_path / "opt-bin").mkdir()
    gw = gateway_script(tmp_path / "opt-bin" / "openshell-gateway", "0.0.43")  # not on PATH: only the marker finds it
    proc = procs.start([str(gw)])
    write_marker(proc.pid, str(gw), fake_openshell.port)
    ctx = make_ctx()
    with pytest.raises(Refusal) as info:
        run_step("preflight", ctx)
    text = refusal_text(info.value)
    assert info.value.reason == "host_process_drift"
    assert f"  Running gateway binary: {gw} (0.0.43)" in info.value.diagnosis
    assert "  Installed OpenShell: 0.0.37" in info.value.diagnosis
    assert "No sandbox data was changed" in text and "Running gateway image" not in text
    assert "nemoclaw backup-all" in text
    assert not fake_openshell.called("sandbox list")


def test_case4_stale_marker_sibling_binary_upgrade_wording(fake_openshell, home):
    gw = gateway_script(home / "bin" / "openshell-gateway", "0.0.43")
    write_marker(999999, "/nonexistent/openshell-gateway", fake_openshell.port)
    ctx = make_ctx(UPGRADE)
    with pytest.raises(Refusal) as info:
        run_step("preflight", ctx)
    assert f"  Running gateway binary: {gw} (0.0.43)" in info.value.diagnosis
    assert info.value.diagnosis[1] == "  OpenShell gateway schema preflight failed before checking sandbox upgrade state."
    assert "    2. Rerun `nemoclaw upgrade-sandboxes` after `openshell status` reports a healthy NemoClaw gateway." in info.value.diagnosis
    assert not fake_openshell.called("sandbox list")


def test_case5_no_marker_falls_back_to_sibling(fake_openshell, home):
    gateway_script(home / "bin" / "openshell-gateway", "0.0.43")
    with pytest.raises(Refusal) as info:
        run_step("preflight", make_ctx())
    assert re.search(r"Running gateway binary.*0\.0\.43", refusal_text(info.value))


def test_case6_stale_marker_is_not_a_false_positive(fake_openshell, home, tmp_path):
    old = tmp_path / "old-bin"
    old.mkdir()
    old_gw = gateway_script(old / "openshell-gateway", "0.0.43")
    gateway_script(home / "bin" / "openshell-gateway", "0.0.37")
    write_marker(999999, str(old_gw), fake_openshell.port)
    ctx = make_ctx()
    run_step("preflight", ctx)  # no refusal
    run_step("sandbox_list", ctx)
    assert fake_openshell.called("sandbox list")
    assert ctx.facts["sandbox_list"].ready == ["alpha"]
    assert "0.0.43" not in stderr(ctx)


def test_env_override_binary(fake_openshell, home, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    gw = gateway_script(elsewhere / "openshell-gateway", "0.0.40")
    monkeypatch.setenv("NEMOCLAW_OPENSHELL_GATEWAY_BIN", str(gw))
    with pytest.raises(Refusal) as info:
        run_step("preflight", make_ctx())
    assert f"  Running gateway binary: {gw} (0.0.40)" in info.value.diagnosis


def test_openshell_not_found_exact_message(home):
    ctx = make_ctx()
    with pytest.raises(StepError) as info:
        run_step("preflight", ctx)
    assert info.value.exit_code == 1
    assert stderr(ctx) == "openshell CLI not found. Install OpenShell before using sandbox commands.\n"
    assert info.value.verbatim  # upstream's sentence, shown as-is by the output layer


def test_nemoclaw_openshell_bin_must_be_absolute_and_executable(fake_openshell, home, tmp_path, monkeypatch):
    from orchestrator.adapters.openshell.cli import find_openshell

    monkeypatch.setenv("NEMOCLAW_OPENSHELL_BIN", "openshell")  # relative: ignored
    assert find_openshell() == str(fake_openshell.path)
    other = tmp_path / "other-openshell"
    other.write_text("#!/bin/sh\n")
    monkeypatch.setenv("NEMOCLAW_OPENSHELL_BIN", str(other))  # not executable: ignored
    assert find_openshell() == str(fake_openshell.path)
    other.chmod(0o755)
    assert find_openshell() == str(other)


def test_generic_list_failure_no_recovery(fake_openshell):
    fake_openshell.set_list(err="usage: openshell sandbox list\n", rc=2)
    ctx = make_ctx()
    with pytest.raises(StepError) as info:
        run_step("sandbox_list", ctx)
    assert info.value.exit_code == 2
    assert stderr(ctx).splitlines() == [
        "  Failed to query running sandboxes from OpenShell.",
        "  Ensure OpenShell is running: openshell status",
    ]
    assert not fake_openshell.called("gateway select")
    assert sum(1 for line in fake_openshell.calls.read_text().splitlines() if line.startswith("sandbox list")) == 1


def test_ready_filtering_from_table(fake_openshell):
    fake_openshell.set(version="openshell 0.0.43\n")
    fake_openshell.set_list(out=(
        "\x1b[1mNAME   CREATED              PHASE\x1b[0m\n"
        "alpha  2026-03-24 10:00:00  \x1b[32mReady\x1b[39m\n"
        "beta   2026-03-24 10:00:00  \x1b[31mError\x1b[39m\n"
    ))  # fmt: skip
    ctx = make_ctx()
    run_step("sandbox_list", ctx)
    data = attrs.asdict(ctx.facts["sandbox_list"])
    assert data["live"] == ["alpha", "beta"] and data["ready"] == ["alpha"] and data["format"] == "table"
    assert data["phases"] == {"alpha": "Ready", "beta": "Error"} and data["recovered"] is False


def test_json_listing_used_from_0_0_44(fake_openshell):
    fake_openshell.set(version="openshell 0.0.44\n")
    fake_openshell.set_list(out=json.dumps([{"name": "alpha", "phase": "Ready"}, {"name": "beta", "phase": "Provisioning"}]))
    ctx = make_ctx()
    run_step("sandbox_list", ctx)
    assert fake_openshell.called("sandbox list -o json")
    assert ctx.facts["sandbox_list"].ready == ["alpha"] and ctx.facts["sandbox_list"].format == "json"


def test_all_unspecified_phases_refuse(fake_openshell):
    fake_openshell.set_list(out="NAME   CREATED              PHASE\nalpha  2026-06-01 10:00:00  Unspecified\n")
    with pytest.raises(Refusal) as info:
        run_step("sandbox_list", make_ctx())
    assert info.value.reason == "phase_unspecified"
    assert info.value.diagnosis[1] == "  OpenShell gateway/schema mismatch was detected while backing up registered sandboxes."
