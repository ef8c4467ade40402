"""The stand-in for OpenShell's protobuf messages, and their version skew
(docs/reference/openshell-cli-and-gateway.md, "Version skew").

The gateway encodes every `Sandbox` in the layout of *its* release ("schema generation"); the
CLI decodes with the layout of *its* release, failing or defaulting exactly where prost would:

* gen 0 (≤0.0.36): `Sandbox{id: string (1), name, phase (4)}`.
* gen 1 (0.0.37-0.0.52): `Sandbox{metadata: ObjectMeta (1), phase (4), current_policy_version (5)}`;
  `ObjectMeta.resource_version` only from 0.0.44 (absent ⇒ 0).
* gen 2 (0.0.53+): phase/current_policy_version moved into `status: SandboxStatus` (#1565).
  `ObjectMeta.workspace` from 0.0.88.
* gen 3 (0.1.x): `ObjectMeta.created_time` is a Timestamp (field 103) instead of
  `created_at_ms` (3); a gen 2 reader sees no creation time, and the reverse.

Reading gen 0 with a gen ≥1 CLI is the #3399 decode error; gen 1 ↔ gen 2 silently reads
`Unspecified`. JSON objects stand in for the protobuf bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PHASES = ["Unspecified", "Provisioning", "Ready", "Error", "Deleting", "Unknown",
          "Stopping", "Stopped", "Starting", "Completed"]  # 6-9: 0.1.x (COMPLETED new in 0.1.0)


def phase_number(name: str) -> int:
    return PHASES.index(name) if name in PHASES else 0


def phase_name(num: int) -> str:
    return PHASES[num] if 0 <= num < len(PHASES) else "Unknown"


class DecodeError(Exception):
    """prost's `DecodeError` Display text (`failed to decode Protobuf message: …`)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"failed to decode Protobuf message: {path}: {reason}")


@dataclass
class Sandbox:
    """The CLI's decoded view of a sandbox."""

    id: str
    name: str
    phase: str = "Unspecified"
    created_at_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    resource_version: int = 0
    current_policy_version: int = 0
    workspace: str = ""


def encode_sandbox(s: Sandbox, generation: int, with_resource_version: bool) -> dict[str, Any]:
    """Gateway side: the message as this gateway's release lays it out."""
    if generation == 0:
        return {"1:id": s.id, "2:name": s.name, "3:created_at_ms": s.created_at_ms, "4:phase": phase_number(s.phase)}
    meta: dict[str, Any] = {"1:id": s.id, "2:name": s.name, "4:labels": s.labels}
    meta["103:created_time" if generation >= 3 else "3:created_at_ms"] = s.created_at_ms
    if s.workspace:
        meta["6:workspace"] = s.workspace
    if with_resource_version:
        meta["5:resource_version"] = s.resource_version
    msg: dict[str, Any] = {"1:metadata": meta}
    if generation == 1:
        msg["4:phase"] = phase_number(s.phase)
        msg["5:current_policy_version"] = s.current_policy_version
    else:
        msg["6:status"] = {"1:phase": phase_number(s.phase), "2:current_policy_version": s.current_policy_version}
    return msg


def decode_sandbox(msg: dict[str, Any], generation: int, path: str) -> Sandbox:
    """CLI side; `path` is prost's field path of the enclosing message, e.g.
    `ListSandboxesResponse.sandboxes`."""
    if generation == 0:
        if "1:metadata" in msg:
            # An embedded ObjectMeta read as `string id`: its bytes are not valid UTF-8.
            raise DecodeError(f"Sandbox.id: {path}", "invalid string value: data is not UTF-8 encoded")
        return Sandbox(id=msg.get("1:id", ""), name=msg.get("2:name", ""),
                       created_at_ms=msg.get("3:created_at_ms", 0), phase=phase_name(msg.get("4:phase", 0)))
    if "1:id" in msg and "1:metadata" not in msg:
        # A UUID string read as an embedded ObjectMeta message (NemoClaw #3399).
        raise DecodeError(f"Sandbox.metadata: {path}", "invalid wire type value: 6")
    meta = msg.get("1:metadata", {})
    created = meta.get("103:created_time" if generation >= 3 else "3:created_at_ms", 0)
    out = Sandbox(id=meta.get("1:id", ""), name=meta.get("2:name", ""), created_at_ms=created,
                  labels=dict(meta.get("4:labels") or {}), resource_version=meta.get("5:resource_version", 0),
                  workspace=meta.get("6:workspace", ""))
    if generation == 1:
        out.phase = phase_name(msg.get("4:phase", 0))
        out.current_policy_version = msg.get("5:current_policy_version", 0)
    else:
        status = msg.get("6:status", {})
        out.phase = phase_name(status.get("1:phase", 0))
        out.current_policy_version = status.get("2:current_policy_version", 0)
    return out
