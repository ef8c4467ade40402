"""`nemoclaw gateway check`: read-only doctor, table or --json, exit 1 on drift."""

from __future__ import annotations

import json

from click.testing import CliRunner

from orchestrator.cli.gateway import gateway_group
from orchestrator.kernel.paths import Paths

from tests.support.fakes import gateway_script


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_check_json_reports_host_drift_and_writes_nothing(fake_openshell, home):
    gw = gateway_script(home / "bin" / "openshell-gateway", "0.0.43")
    before = _tree(home)
    result = CliRunner().invoke(gateway_group, ["check", "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "host_process_drift" and doc["drift"] is True
    assert doc["cli"] == {"path": str(fake_openshell.path), "version": "0.0.37"}
    assert doc["gateway_binary"] == {"path": str(gw), "version": "0.0.43"}
    assert doc["marker"] is None and doc["cluster"] is None
    assert "  Running gateway binary: " + str(gw) + " (0.0.43)" in doc["diagnosis"]
    assert _tree(home) == before
    assert not fake_openshell.called("sandbox list") and not fake_openshell.called("gateway select")


def test_check_table_without_docker_or_a_live_gateway_could_not_check(fake_openshell, home):
    """Matching versions on disk are not enough for `ok`: here no Docker engine answers and
    nothing accepts on the gateway's port, so the doctor could not look (tests/e2e/
    test_gateway_check_e2e.py has the `ok` against a running stand-in)."""
    gateway_script(home / "bin" / "openshell-gateway", "0.0.37")
    result = CliRunner().invoke(gateway_group, ["check"])
    assert result.exit_code == 1, result.output
    assert "Gateway binary" in result.stdout and "Verdict: could not check" in result.stdout
    assert "Verdict: ok" not in result.stdout
    assert "  Cluster image   unknown (Docker engine unreachable)" in result.stdout
    assert "Could not check: the Docker engine at " in result.stderr
    assert "Could not check: the gateway is not healthy" in result.stderr
    assert not Paths.from_env().gateway_state_dir.exists()


def test_check_without_openshell(home):
    result = CliRunner().invoke(gateway_group, ["check", "--json"])
    assert result.exit_code == 1
    assert result.stderr == "openshell CLI not found. Install OpenShell before using sandbox commands.\n"
