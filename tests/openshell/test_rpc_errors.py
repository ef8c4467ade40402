"""Which failed `openshell` calls are worth one retry, and the cause shown (pure text functions)."""

from __future__ import annotations

import pytest

from orchestrator.adapters.openshell.cli import CaptureResult
from orchestrator.adapters.openshell.rpc_errors import grpc_cause, is_transient_failure, last_line


def _result(output: str, status: int = 1, timed_out: bool = False) -> CaptureResult:
    return CaptureResult(args=("sandbox", "list"), status=status, output=output, timed_out=timed_out)


@pytest.mark.parametrize(
    "output, transient",
    [
        ('Error:   × status: Unavailable, message: "db lost", details: [], metadata: MetadataMap { headers: {} }', True),
        ('Error:   × status: DeadlineExceeded, message: "slow", details: []', True),
        ("Error:   × code: 'The service is currently unavailable', message: \"db lost\"", True),
        ('Error:   × status: Internal, message: "h2 protocol error: connection reset"', True),
        ('Error:   × status: Unimplemented, message: "", details: []', False),
        ('Error:   × status: Internal, message: "failed to decode Protobuf message: invalid wire type value: 6"', False),
        ('Error:   × status: NotFound, message: "sandbox not found"', False),
    ],
)
def test_transient_failures(output, transient):
    assert is_transient_failure(_result(output)) is transient
    assert is_transient_failure(_result(output, status=0)) is False


def test_timeout_is_transient_and_cause_is_unwrapped():
    assert is_transient_failure(_result("", timed_out=True))
    wrapped = 'Error:   × status: Unavailable, message: "connection to the gateway database was\n  │ lost", details: []'
    assert grpc_cause(wrapped) == 'status: Unavailable, message: "connection to the gateway database was lost"'
    assert grpc_cause("something odd\n\n") is None
    assert last_line("Error:   × transport error\n  ╰─▶ Connection refused (os error 111)\n") == "Connection refused (os error 111)"
    assert last_line("") is None
