"""The refusal block, line by line, for every variant and wording (docs/reference/gateway-preflight.md, "The refusal text")."""

from __future__ import annotations

import pytest

from orchestrator.adapters.openshell.diagnosis import (
    backup_all_wording,
    format_diagnosis,
    upgrade_sandboxes_wording,
)
from orchestrator.adapters.openshell.drift import HostProcessDrift, ImageDrift, ServedVersionDrift, StateRpcIssue

RECOVERY_BACKUP = [
    "",
    "  Refusing to trust OpenShell sandbox state while the host CLI and gateway schema may be out of sync.",
    "  No sandbox data was changed.",
    "",
    "  Recovery:",
    "    1. Run `nemoclaw onboard --resume` to repair or recreate the NemoClaw gateway with the installed OpenShell version.",
    "    2. Rerun `nemoclaw backup-all` after `openshell status` reports a healthy NemoClaw gateway.",
    "",
]
HOST_LAST = (
    "  If gateway recreation is required, preserve sandbox state first; do not delete sandbox volumes or backups "
    "until `openshell status` reports a healthy NemoClaw gateway on the installed OpenShell version."
)
PROTOBUF = (
    'Error: status: Internal, message: "failed to decode Protobuf message: Sandbox.metadata: '
    'SandboxResponse.sandbox: invalid wire type value: 6"'
)


@pytest.fixture(autouse=True)
def _branding(monkeypatch):
    monkeypatch.delenv("NEMOCLAW_INVOKED_AS", raising=False)
    monkeypatch.delenv("NEMOCLAW_AGENT", raising=False)


def test_host_process_block_matches_reference_exactly():
    issue = StateRpcIssue("host_process_drift", HostProcessDrift("/tmp/x/bin/openshell-gateway", "0.0.43", "0.0.37"))
    assert format_diagnosis(issue, backup_all_wording()) == [
        "",
        "  OpenShell gateway schema preflight failed before backing up registered sandboxes.",
        "  Installed OpenShell: 0.0.37",
        "  Running gateway binary: /tmp/x/bin/openshell-gateway (0.0.43)",
        *RECOVERY_BACKUP,
        HOST_LAST,
    ]


def test_design_doc_bug_report_lines_are_all_present():
    issue = StateRpcIssue("host_process_drift", HostProcessDrift("/home/u/.local/bin/openshell-gateway", "0.0.43", "0.0.44"))
    lines = format_diagnosis(issue, backup_all_wording())
    for expected in (
        "  OpenShell gateway schema preflight failed before backing up registered sandboxes.",
        "  Installed OpenShell: 0.0.44",
        "  Running gateway binary: /home/u/.local/bin/openshell-gateway (0.0.43)",
        "  Refusing to trust OpenShell sandbox state while the host CLI and gateway schema may be out of sync.",
        "  No sandbox data was changed.",
        "    1. Run `nemoclaw onboard --resume` to repair or recreate the NemoClaw gateway with the installed OpenShell version.",
    ):
        assert expected in lines
    text = "\n".join(lines)
    assert "openshell-cluster-nemoclaw" not in text and "Running gateway image" not in text


def test_host_process_without_binary_path():
    issue = StateRpcIssue("host_process_drift", HostProcessDrift(None, "0.0.43", "0.0.44"))
    assert "  Running gateway binary: host-process gateway (0.0.43)" in format_diagnosis(issue)


def test_image_block():
    drift = ImageDrift("openshell-cluster-nemoclaw", "ghcr.io/nvidia/openshell/cluster:0.0.36", "0.0.36", "0.0.37")
    assert format_diagnosis(StateRpcIssue("image_drift", drift), upgrade_sandboxes_wording()) == [
        "",
        "  OpenShell gateway schema preflight failed before checking sandbox upgrade state.",
        "  Installed OpenShell: 0.0.37",
        "  Running gateway image: ghcr.io/nvidia/openshell/cluster:0.0.36 (0.0.36)",
        "",
        "  Refusing to trust OpenShell sandbox state while the host CLI and gateway schema may be out of sync.",
        "  No sandbox data was changed.",
        "",
        "  Recovery:",
        "    1. Run `nemoclaw onboard --resume` to repair or recreate the NemoClaw gateway with the installed OpenShell version.",
        "    2. Rerun `nemoclaw upgrade-sandboxes` after `openshell status` reports a healthy NemoClaw gateway.",
        "",
        "  If gateway recreation is required, preserve sandbox state first; do not remove `openshell-cluster-nemoclaw` "
        "Docker volumes unless you have a backup and explicitly accept state loss.",
    ]


def test_protobuf_without_drift():
    lines = format_diagnosis(StateRpcIssue("protobuf_mismatch", None, output="\x1b[31m" + PROTOBUF + "\n\n"), backup_all_wording())
    assert lines == [
        "",
        "  OpenShell gateway/schema mismatch was detected while backing up registered sandboxes.",
        "  NemoClaw saw protobuf/schema mismatch output from OpenShell.",
        "  OpenShell output: " + PROTOBUF,
        *RECOVERY_BACKUP,
        "  If gateway recreation is required, preserve sandbox state first; do not delete sandbox state, backups, "
        "or gateway data until `openshell status` reports a healthy NemoClaw gateway.",
    ]
    text = "\n".join(lines)
    assert "preserve sandbox state first" in text
    for absent in ("openshell-cluster", "Docker volumes", "schema preflight failed before"):
        assert absent not in text


def test_protobuf_with_host_drift_and_long_output_snippet():
    drift = HostProcessDrift("/opt/bin/openshell-gateway", "0.0.43", "0.0.44")
    long = "x " * 400
    lines = format_diagnosis(StateRpcIssue("protobuf_mismatch", drift, output=long), backup_all_wording())
    assert lines[1:5] == [
        "  OpenShell gateway/schema mismatch was detected while backing up registered sandboxes.",
        "  Installed OpenShell: 0.0.44",
        "  Running gateway binary: /opt/bin/openshell-gateway (0.0.43)",
        "  OpenShell output: " + long.strip()[:260],
    ]
    assert lines[-1] == HOST_LAST
    empty = format_diagnosis(StateRpcIssue("protobuf_mismatch", drift, output="  \n"))
    assert not any(line.startswith("  OpenShell output:") for line in empty)


def test_served_version_variant_has_the_same_shape():
    drift = ServedVersionDrift("http://127.0.0.1:8080", "0.0.43", "0.0.44")
    lines = format_diagnosis(StateRpcIssue("served_version_drift", drift), backup_all_wording())
    assert lines == [
        "",
        "  OpenShell gateway schema preflight failed before backing up registered sandboxes.",
        "  Installed OpenShell: 0.0.44",
        "  Running gateway version: http://127.0.0.1:8080 (0.0.43)",
        *RECOVERY_BACKUP,
        HOST_LAST,
    ]


def test_migration_variant_names_the_cause():
    drift = HostProcessDrift("/opt/bin/openshell-gateway", "0.0.43", "0.0.44")
    issue = StateRpcIssue(
        "gateway_migration", drift, output="Error: × migration 5 was previously applied but is missing in the resolved migrations",
        cause="the gateway database was written by a newer OpenShell",
    )
    lines = format_diagnosis(issue, backup_all_wording())
    assert lines[1] == "  OpenShell gateway/schema mismatch was detected while backing up registered sandboxes."
    assert lines[4] == "  Gateway start failed: the gateway database was written by a newer OpenShell."
    assert lines[5].startswith("  OpenShell output: Error: × migration 5")


def test_wordings_and_default():
    lines = format_diagnosis(StateRpcIssue("host_process_drift", HostProcessDrift(None, "1", "2")))
    assert lines[1] == "  OpenShell gateway schema preflight failed before querying OpenShell sandbox state."
    assert "    2. Rerun the command after `openshell status` reports a healthy NemoClaw gateway." in lines


def test_branding(monkeypatch):
    monkeypatch.setenv("NEMOCLAW_INVOKED_AS", "nemohermes")
    monkeypatch.setenv("NEMOCLAW_AGENT", "hermes")
    lines = format_diagnosis(StateRpcIssue("protobuf_mismatch", None, output="x"), backup_all_wording())
    assert "  NemoHermes saw protobuf/schema mismatch output from OpenShell." in lines
    assert "    2. Rerun `nemohermes backup-all` after `openshell status` reports a healthy NemoHermes gateway." in lines


CROSS_LINE = (
    "  Installed OpenShell (0.0.x) and the running gateway (0.1.x) are on different release lines: such a gateway"
    " cannot serve these sandboxes; back up 0.0.x sandboxes and recreate them on the 0.1.x line."
)


def test_cross_line_host_drift_keeps_the_block_and_adds_one_line():
    issue = StateRpcIssue("host_process_drift", HostProcessDrift("/opt/bin/openshell-gateway", "0.1.5", "0.0.116"))
    assert format_diagnosis(issue, backup_all_wording()) == [
        "",
        "  OpenShell gateway schema preflight failed before backing up registered sandboxes.",
        "  Installed OpenShell: 0.0.116",
        "  Running gateway binary: /opt/bin/openshell-gateway (0.1.5)",
        CROSS_LINE,
        *RECOVERY_BACKUP,
        HOST_LAST,
    ]


def test_cross_line_reverse_and_served_variant():
    drift = ServedVersionDrift("http://127.0.0.1:17670", "0.0.116", "0.1.5")
    lines = format_diagnosis(StateRpcIssue("served_version_drift", drift), backup_all_wording())
    assert lines[2:5] == [
        "  Installed OpenShell: 0.1.5",
        "  Running gateway version: http://127.0.0.1:17670 (0.0.116)",
        "  Installed OpenShell (0.1.x) and the running gateway (0.0.x) are on different release lines: such a gateway"
        " cannot serve these sandboxes; back up 0.0.x sandboxes and recreate them on the 0.1.x line.",
    ]
    assert len(lines) == len(format_diagnosis(StateRpcIssue("served_version_drift",
                                                            ServedVersionDrift("x", "0.0.43", "0.0.44")))) + 1


def test_same_line_drift_has_no_cross_line_line():
    for current, expected in (("0.0.43", "0.0.44"), ("0.1.0-pre.3", "0.1.0"), ("0.0.112-dev.5+g1a2b3c4", "0.0.112")):
        lines = format_diagnosis(StateRpcIssue("host_process_drift", HostProcessDrift("/g", current, expected)))
        assert not any("release lines" in line for line in lines)
