"""Pure parsers against the exact upstream texts (docs/reference/nemoclaw-commands.md "Running `openshell`",
gateway-preflight.md "Legacy cluster container", gateway-recovery.md)."""

from __future__ import annotations

import pytest

from orchestrator.adapters.openshell.cli import CaptureResult, parse_version, strip_ansi, version_gte
from orchestrator.adapters.openshell.cluster import parse_cluster_image_version
from orchestrator.adapters.openshell.drift import result_issue
from orchestrator.adapters.openshell.health import endpoint_port, endpoint_url, is_gateway_healthy, lifecycle_state, status_version
from orchestrator.adapters.openshell.rpc_errors import is_protobuf_mismatch
from orchestrator.adapters.openshell.sandboxes import list_args, parse_listing, parse_live_sandbox_names, parse_ready_sandbox_names
from orchestrator.adapters.openshell.recovery import classify_gateway_failure, fatal_error_text, is_recoverable_list_failure

STATUS = "Server Status\n\n  Gateway: nemoclaw\n  Server: http://127.0.0.1:8080\n  Status: Connected\n  Version: 0.0.44"
STATUS_E2E = "Server Status\n\n  Gateway: nemoclaw\n  Gateway endpoint: http://127.0.0.1:8080\n  Status: Connected"
INFO = "Gateway Info\n\n  Gateway: nemoclaw\n  Gateway endpoint: http://127.0.0.1:8080"
PROTOBUF = (
    'Error: status: Internal, message: "failed to decode Protobuf message: Sandbox.metadata: '
    'SandboxResponse.sandbox: invalid wire type value: 6"'
)
REFUSED = (
    "Error:   × transport error\n  ├─▶ tcp connect error\n  ├─▶ tcp connect error\n"
    "  ╰─▶ Connection refused (os error 111)"
)


def test_versions():
    assert parse_version("openshell 0.0.37") == "0.0.37"
    # A describe string is its own release: kept whole, so it never equals the tag it follows.
    assert parse_version("openshell-gateway 0.0.45-dev.3+gabc1234") == "0.0.45-dev.3+gabc1234"
    assert parse_version("no version here") is None
    assert version_gte("0.0.44", "0.0.44") and version_gte("0.1", "0.0.99") and not version_gte("0.0.43", "0.0.44")
    assert version_gte("0.0.44", "0.0.44.0") and version_gte("1.x.0", "1.0.0")


def test_strip_ansi_real_escapes():
    assert strip_ansi("\x1b[1m\x1b[36mGateway endpoint:\x1b[39m\x1b[0m x") == "Gateway endpoint: x"


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("ghcr.io/nvidia/openshell/cluster:0.0.36", "0.0.36"),
        ("nemoclaw-cluster:0.0.36-fuse-overlayfs-aa8b8487", "0.0.36"),
        ("registry.local/nemoclaw-cluster:0.0.36@sha256:abc", "0.0.36"),
        ("example.com/other/image:0.0.36", None),
        ("nemoclaw-cluster:0.0.36x", None),
        ("", None),
    ],
)
def test_cluster_image_version(ref, expected):
    assert parse_cluster_image_version(ref) == expected


def test_is_gateway_healthy():
    assert is_gateway_healthy(STATUS, INFO, INFO)
    assert is_gateway_healthy(STATUS_E2E, INFO, INFO)
    assert is_gateway_healthy("Server Status\n\n  Gateway: nemoclaw", "", "")  # upstream quirk: header = connected
    assert not is_gateway_healthy(STATUS.replace("nemoclaw", "other"), INFO, INFO)
    assert not is_gateway_healthy("Server Status\n\n  Gateway: nemoclaw\n" + REFUSED, INFO, INFO)
    assert is_gateway_healthy("", INFO, INFO)  # silent status, both infos agree
    assert not is_gateway_healthy("", "No gateway metadata found for 'nemoclaw'.", INFO)


def test_lifecycle_states():
    down = "Server Status\n\n  Gateway: nemoclaw\n  Server: http://127.0.0.1:8080\nError:   × client error (Connect)"
    assert lifecycle_state(STATUS, INFO) == "healthy_named"
    assert lifecycle_state(down, INFO) == "named_unreachable"
    assert lifecycle_state("Server Status\n\n  Gateway: nemoclaw\n  Status: Error", INFO) == "named_unhealthy"
    assert lifecycle_state(STATUS.replace("nemoclaw", "other"), INFO) == "connected_other"
    none = "Gateway Status\n\n  Status: No gateway configured.\n\nRegister a gateway with: openshell gateway add <endpoint>"
    assert lifecycle_state(none, "No gateway metadata found for 'nemoclaw'.") == "missing_named"


def test_endpoint_and_status_fields():
    assert endpoint_url("\x1b[2mGateway endpoint:\x1b[0m http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert endpoint_port("https://127.0.0.1:8080") == 8080
    assert endpoint_port("http://gw.local") == 80 and endpoint_port("https://gw.local") == 443
    assert endpoint_port("not a url") is None and endpoint_port(None) is None
    assert status_version(STATUS) == "0.0.44" and status_version(STATUS_E2E) is None


# The listing lines of upstream's runtime-recovery tests (docs/reference/gateway-recovery.md, "Listing lines")
TABLE = (
    "\x1b[1mNAME   CREATED              PHASE\x1b[0m\n"
    "alpha  2026-03-24 10:00:00  \x1b[32mReady\x1b[39m\n"
    "beta   2026-03-24 10:00:00  \x1b[33mProvisioning\x1b[39m\n"
    "gamma  2026-03-24 10:00:00  \x1b[31mError\x1b[39m\n"
)


def test_live_and_ready_names_from_table():
    assert parse_live_sandbox_names(TABLE) == ["alpha", "beta", "gamma"]
    assert parse_ready_sandbox_names(TABLE) == ["alpha"]


def test_empty_error_and_protobuf_lines_list_nothing():
    for text in ("No sandboxes found.", "No sandboxes found", "Error: something broke", PROTOBUF):
        assert parse_live_sandbox_names(text) == [] and parse_ready_sandbox_names(text) == []


def test_names_starting_name_or_no_are_kept():
    text = "NAME CREATED PHASE\nnamey 2026-03-24 10:00:00 Ready\nnobody 2026-03-24 10:00:00 Ready"
    assert parse_live_sandbox_names(text) == ["namey", "nobody"]


def test_ready_set_is_ready_or_running_only():
    text = "a Ready\nb Running\nc NotReady\nd Error\ne Provisioning\nmy-agent   Running   openclaw"
    assert parse_ready_sandbox_names(text) == ["a", "b", "my-agent"]
    assert parse_ready_sandbox_names("alpha openshell 2026-03-24 10:00:00 Ready") == ["alpha"]
    # Ready tokens outside the phase column do not count
    assert parse_ready_sandbox_names("Ready-box Ready Error x y") == []


def test_json_listing_and_list_args():
    stdout = '[\n  {"created_at": "2026-05-19 14:42:10", "name": "a", "phase": "Ready"},\n  {"name": "b", "phase": "Error"}\n]'
    listing = parse_listing(stdout, stdout)
    assert listing.format == "json" and listing.live == ("a", "b") and listing.ready == ("a",)
    assert parse_listing("[]", "[]").live == ()
    assert list_args("0.0.43") == ["sandbox", "list"] and list_args("0.0.44") == ["sandbox", "list", "-o", "json"]
    assert list_args(None) == ["sandbox", "list"]


def test_protobuf_and_unspecified_are_schema_mismatches():
    assert is_protobuf_mismatch(PROTOBUF) and is_protobuf_mismatch("protobuf decode failed")
    # Wider than upstream's regexes on purpose: a 0.1.x gateway answers a 0.0.x CLI's request with
    # prost's bare DecodeError text, which names no wire type (docs/reference/openshell-versions.md).
    assert is_protobuf_mismatch("failed to decode Protobuf message")
    assert not is_protobuf_mismatch("failed to decode the response")
    res = CaptureResult(("sandbox", "list"), 1, PROTOBUF, "", PROTOBUF)
    assert result_issue(res) == "protobuf_mismatch"
    table = "NAME  CREATED              PHASE\nalpha 2026-06-01 10:00:00  Unspecified\nbeta  2026-06-01 10:00:00  Unspecified"
    ok = CaptureResult(("sandbox", "list"), 0, table, table)
    assert result_issue(ok, phases=parse_listing(table, table).phases) == "phase_unspecified"
    js = '[{"name": "a", "phase": "Unspecified"}]'
    assert result_issue(CaptureResult((), 0, js, js), phases=parse_listing(js, js).phases) == "phase_unspecified"
    mixed = table.replace("beta  2026-06-01 10:00:00  Unspecified", "beta 2026-06-01 10:00:00 Ready")
    assert result_issue(CaptureResult((), 0, mixed, mixed), phases=parse_listing(mixed, mixed).phases) is None
    assert result_issue(CaptureResult((), 0, "No sandboxes found.", "No sandboxes found."), phases=[]) is None


def test_recoverable_list_failures():
    def res(text, status=1):
        return CaptureResult(("sandbox", "list"), status, text, "", text)

    assert is_recoverable_list_failure(res("client error (Connect): Connection refused"))
    assert is_recoverable_list_failure(res(REFUSED))
    assert is_recoverable_list_failure(res("Error:   × No active gateway.\n  │ Set one with: openshell gateway select <name>"))
    assert not is_recoverable_list_failure(res("usage: openshell sandbox list"))
    assert not is_recoverable_list_failure(res("unknown option: --json"))
    assert not is_recoverable_list_failure(res("Connection refused " + PROTOBUF))
    assert not is_recoverable_list_failure(res("Connection refused", status=0))


def test_migration_failure_classification_handles_miette_wrapping():
    missing = (
        "Error:   × execution error: migration error: migration 5 was previously applied but\n"
        "  │ is missing in the resolved migrations\n"
    )
    modified = "Error:   × execution error: migration error: migration 4 was previously applied\n  │ but has been modified\n"
    for text in (missing, modified, "\x1b[31m" + missing):
        assert classify_gateway_failure(text) == "the gateway database was written by a newer OpenShell"
    assert classify_gateway_failure("Error:   × --db-url is required (or set OPENSHELL_DB_URL)") is None
    assert fatal_error_text("INFO boot\n" + missing) == (
        "Error: × execution error: migration error: migration 5 was previously applied but "
        "is missing in the resolved migrations"
    )


def test_prost_decode_error_of_a_mixed_line_pair_is_a_protobuf_mismatch():
    from orchestrator.adapters.openshell.rpc_errors import is_protobuf_mismatch
    from orchestrator.adapters.openshell.sandboxes import parse_live_sandbox_names

    text = ('Error:   × status: Internal, message: "failed to decode Protobuf message:'
            ' ListSandboxesRequest.workspace_scope: unexpected end group tag", details: [], metadata: MetadataMap { headers: {} }')
    assert is_protobuf_mismatch(text)
    assert parse_live_sandbox_names(text) == []


def test_json_listing_reads_workspace_and_the_new_phases():
    import json as _json

    rows = [{"name": "a", "id": "1", "phase": "Ready", "workspace": "default"},
            {"name": "b", "id": "2", "phase": "Stopped", "workspace": "team"},
            {"name": "c", "id": "3", "phase": "Starting"}, {"name": "d", "id": "4", "phase": "Completed"},
            {"name": "e", "id": "5", "phase": "Stopping"}, {"name": "f", "id": "6", "phase": "Suspended"},
            {"name": "g", "id": "7", "phase": 7}]
    listing = parse_listing(_json.dumps(rows), "")
    assert listing.phases == ["Ready", "Stopped", "Starting", "Completed", "Stopping", "unknown", "unknown"]
    assert listing.ready == ("a",) and listing.live == ("a", "b", "c", "d", "e", "f", "g")
    data = listing.as_data()
    assert data["workspaces"] == {"a": "default", "b": "team"}
    assert data["phases"]["f"] == "unknown" != "stopped"


def test_table_listing_unknown_phase_is_unknown():
    table = "NAME  CREATED              PHASE\nalpha 2026-10-01 10:00:00  Suspended\nbeta  2026-10-01 10:00:00  Stopped"
    listing = parse_listing(table, table)
    assert listing.phases == ["unknown", "Stopped"] and listing.ready == ()


def test_endpoint_from_offline_and_live_gateway_info():
    from orchestrator.adapters.openshell.health import endpoint_url

    assert endpoint_url("Gateway Info\n\n  Gateway: nemoclaw\n  Gateway endpoint: http://127.0.0.1:8080\n") == \
        "http://127.0.0.1:8080"
    live = ("\x1b[1m\x1b[36mGateway Info\x1b[39m\x1b[0m\n\n  \x1b[2mGateway:\x1b[0m nemoclaw\n"
            "  \x1b[2mServer:\x1b[0m http://127.0.0.1:17670\n  \x1b[2mStatus:\x1b[0m healthy\n  \x1b[2mVersion:\x1b[0m 0.0.116\n")
    assert endpoint_url(live) == "http://127.0.0.1:17670"
    assert endpoint_url("Error:   × transport error") is None
