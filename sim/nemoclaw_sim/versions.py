"""Release-dependent behaviour of OpenShell, in one place.

Every switch the stand-in makes on its version lives here, so a reader can check it against
the release timeline (docs/reference/openshell-versions.md) without hunting through modules.
A quoted section name in a docstring ("Migrations") is a section of docs/reference/openshell-cli-and-gateway.md.
"""

from __future__ import annotations

import os
import re
from functools import total_ordering

VERSION_ENV = "NEMOCLAW_SIM_OPENSHELL_VERSION"
DEFAULT_CLI_VERSION = "0.0.44"
DEFAULT_GATEWAY_VERSION = "0.0.44"

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z.-]+)?$")


@total_ordering
class Version:
    """A release string such as ``0.0.44`` (or ``0.0.45-dev.3+gabc1234``, ``0.1.0-pre.3``); release
    switches compare the numeric part only."""

    def __init__(self, text: str) -> None:
        m = _VERSION_RE.match(text.strip())
        if not m:
            raise ValueError(f"not an OpenShell version: {text!r} (expected e.g. 0.0.44)")
        self.text = text.strip()
        self.key = (int(m.group(1)), int(m.group(2)), int(m.group(3)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key == other.key

    def __lt__(self, other: "Version") -> bool:
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text

    def at_least(self, text: str) -> bool:
        return self.key >= Version(text).key

    @property
    def line(self) -> tuple[int, int]:
        """The release line: (0, 0) for 0.0.x, (0, 1) for 0.1.x. Peers of two lines cannot be mixed."""
        return self.key[:2]


def current_version() -> Version:
    """The version baked into the launcher that started this process."""
    return Version(os.environ.get(VERSION_ENV) or DEFAULT_CLI_VERSION)


def parse(text: str) -> Version:
    return Version(text)


# --- gateway (openshell-gateway) -------------------------------------------------------------

def default_server_port(v: Version) -> int:
    """("Flags and defaults"): DEFAULT_SERVER_PORT moved from 8080 to 17670 in 0.0.44 (#1415)."""
    return 17670 if v.at_least("0.0.44") else 8080


def db_url_required(v: Version) -> bool:
    """("Flags and defaults"): up to 0.0.43 `--db-url` has no default."""
    return not v.at_least("0.0.44")


def migration_versions(v: Version) -> list[int]:
    """("Migrations"): the sqlx migrations compiled into each release."""
    if not v.at_least("0.0.37"):
        return [1, 2, 3]
    if not v.at_least("0.0.44"):
        return [1, 4]
    if not v.at_least("0.0.88"):
        return [1, 4, 5]
    if not v.at_least("0.1.0"):
        return [1, 4, 5, 6]
    if not v.at_least("0.1.9"):
        return [1, 4, 5, 6, 7, 8, 9]  # docs/reference/openshell-versions.md: 007-009 line up with 0.1.0's removals/pagination
    return [1, 4, 5, 6, 7, 8, 9, 10]  # 010 named in the 0.1.9 notes (#5506)


def has_gateway_info_rpc(v: Version) -> bool:
    """docs/reference/openshell-versions.md: `GetGatewayInfo` exists from 0.0.85 (#2202); older gateways: Unimplemented."""
    return v.at_least("0.0.85")


def legacy_001(v: Version) -> bool:
    """("Migrations"): migration 001 of the k3s era (≤0.0.36) has different content."""
    return not v.at_least("0.0.37")


def startup_tls_lines(v: Version) -> list[tuple[str, str]]:
    """("Start-up log"): the TLS and authentication lines for a plaintext gateway without client auth, by release."""
    if not v.at_least("0.0.43"):
        return [("INFO", "TLS disabled — listening on plaintext HTTP")]
    if not v.at_least("0.0.47"):
        return [
            ("WARN", "TLS disabled — listening on plaintext HTTP"),
            ("WARN", "Neither mTLS (--tls-client-ca) nor OIDC (--oidc-issuer) is configured — "
                     "the gateway has no authentication mechanism"),
        ]
    return [
        ("WARN", "TLS disabled — listening on plaintext HTTP"),
        ("WARN", "Neither mTLS user auth nor OIDC nor sandbox JWT auth is configured — "
                 "the gateway has no authentication mechanism"),
    ]


# --- wire schema (what the CLI and gateway exchange) -------------------------------------------

def schema_generation(v: Version) -> int:
    """("Version skew"): 0 = `Sandbox.id` string (≤0.0.36); 1 = ObjectMeta + top-level phase (0.0.37-0.0.52);
    2 = phase moved into `SandboxStatus` (0.0.53+, #1565); 3 = the 0.1.x protocol (Timestamp
    times, workspace selectors, names instead of ids: docs/reference/openshell-versions.md)."""
    if not v.at_least("0.0.37"):
        return 0
    if not v.at_least("0.0.53"):
        return 1
    if not v.at_least("0.1.0"):
        return 2
    return 3


def has_workspaces(v: Version) -> bool:
    """docs/reference/openshell-sandbox-containers.md: workspaces from 0.0.88 (#2243): `ObjectMeta.workspace`, container
    `openshell-{workspace}--{name}-{id}`, label `openshell.ai/sandbox-workspace`."""
    return v.at_least("0.0.88")


def honors_workdir(v: Version) -> bool:
    """docs/reference/openshell-sandbox-containers.md: from 0.0.99 (#2530) the image's OCI WorkingDir is the sandbox's data root
    unless it is empty, `/` or `/sandbox`."""
    return v.at_least("0.0.99")


def split_supervisor(v: Version) -> bool:
    """docs/reference/openshell-sandbox-containers.md: 0.1.x runs a workload and a supervisor companion container per sandbox."""
    return v.at_least("0.1.0")


def requires_auth(v: Version) -> bool:
    """docs/reference/openshell-versions.md: from 0.1.6 (#4821) a gateway without authentication refuses to start,
    unless `allow_unauthenticated_users = true` under `[openshell.gateway.auth]`."""
    return v.at_least("0.1.6")


def live_gateway_info(v: Version) -> bool:
    """docs/reference/openshell-versions.md: `gateway info` becomes a live probe (GetGatewayInfo) in 0.0.85."""
    return v.at_least("0.0.85")


def phases(v: Version) -> list[str]:
    """The sandbox phase enum. Stopping, Stopped and Starting exist with `sandbox start|stop`
    (0.0.116 refuses to start an Error sandbox because it "must be Stopped", NemoClaw #11885);
    0.1.0 adds Completed (docs/reference/openshell-versions.md)."""
    base = ["Unspecified", "Provisioning", "Ready", "Error", "Deleting", "Unknown"]
    if has_sandbox_start_stop(v):
        base += ["Stopping", "Stopped", "Starting"]
    return base + (["Completed"] if v.at_least("0.1.0") else [])


def has_sandbox_start_stop(v: Version) -> bool:
    """docs/reference/sandbox-lifecycle.md: `openshell sandbox start|stop` (and the `Stopped` phase) are
    what NemoClaw drives on 0.0.116, the release it pins (#11909, #11797); the stand-in has them
    from 0.0.116 on (when older releases gained them is not known)."""
    return v.at_least("0.0.116")


def starts_error_sandbox(v: Version) -> bool:
    """docs/reference/sandbox-lifecycle.md: 0.0.116 refuses to start a sandbox in phase Error
    (NemoClaw #11885); gateway-side recovery of Error sandboxes arrived in 0.1.0 (OS#2269)."""
    return v.at_least("0.1.0")


def has_resource_version(v: Version) -> bool:
    """("Version skew"): `ObjectMeta.resource_version` exists from 0.0.44."""
    return v.at_least("0.0.44")


def tonic_014(v: Version) -> bool:
    """("Version skew"): tonic 0.14 (0.0.61+) prints `code: '<description>', message: "…"`."""
    return v.at_least("0.0.61")


# --- CLI (openshell) ---------------------------------------------------------------------------

def sandbox_list_output_flag(v: Version) -> bool:
    """("sandbox list"): `sandbox list -o table|yaml|json` added in 0.0.44 (#1422)."""
    return v.at_least("0.0.44")


def gateway_list_output_flag(v: Version) -> bool:
    """("gateway select, list, add, remove"): `gateway list -o json|yaml` from 0.0.47 (#1500)."""
    return v.at_least("0.0.47")


def has_gateway_lifecycle(v: Version) -> bool:
    """("gateway select, list, add, remove"): `gateway start|stop|destroy` exist only up to 0.0.36."""
    return not v.at_least("0.0.37")


# --- the 0.0.x → 0.1.x reinstall (nemoclaw-sim upgrade-openshell) ---------------------------

NEWEST_0_1 = "0.1.11"  # docs/reference/openshell-reinstall.md: the newest 0.1.x release (2026-12-01)


def known_0_1_release(v: Version) -> bool:
    """A 0.1.x release the stand-in models: 0.1.0 to the newest one (suffixes compare by number)."""
    return v.line == (0, 1) and v.key <= Version(NEWEST_0_1).key
