"""Adapters for the OpenShell CLI and gateway: locate and run `openshell`, probe the gateway
(cluster container, host process, served version), decide schema drift, format the standard
diagnosis, parse sandbox listings and recover the named gateway.

Nothing here knows about the stand-in in `orchestrator.sim`; it talks to whatever `openshell`
and `openshell-gateway` are installed.
"""

from .binary import gateway_bin_version, resolve_gateway_bin, served_version
from .cli import (
    OPERATION_TIMEOUT,
    PROBE_TIMEOUT,
    CaptureResult,
    OpenShellNotFound,
    OpenShellSpawnError,
    capture_openshell,
    find_openshell,
    installed_openshell_version,
    parse_version,
    require_openshell,
    strip_ansi,
    version_gte,
)
from .cluster import ClusterInfo, cluster_container_name, inspect_cluster, is_cluster_active, parse_cluster_image_version
from .diagnosis import (
    Wording,
    backup_all_wording,
    format_diagnosis,
    rebuild_wording,
    upgrade_sandboxes_wording,
)
from .drift import (
    GATEWAY_MIGRATION,
    HOST_PROCESS_DRIFT,
    IMAGE_DRIFT,
    PHASE_UNSPECIFIED,
    PROTOBUF_MISMATCH,
    SERVED_VERSION_DRIFT,
    Drift,
    HostProcessDrift,
    ImageDrift,
    Observation,
    ServedVersionDrift,
    StateRpcIssue,
    decide,
    detect_preflight_issue,
    is_protobuf_mismatch,
    known_drift,
    observe,
    result_issue,
)
from .health import (
    DEFAULT_GATEWAY,
    RECOVERABLE_STATES,
    GatewayProbes,
    is_gateway_healthy,
    lifecycle_state,
    probe_gateway,
)
from .marker import RuntimeMarker, find_health_port, is_live_gateway, read_marker, write_marker
from .recovery import (
    GatewayStart,
    ListAttempt,
    capture_sandbox_list_with_recovery,
    classify_gateway_failure,
    gateway_port,
    list_failure_lines,
    recover_named_gateway,
    start_gateway,
)
from .sandboxes import (
    SandboxListing,
    list_args,
    parse_listing,
    parse_live_sandbox_names,
    parse_ready_sandbox_names,
)

import types as _types

__all__ = sorted(n for n, v in globals().items() if not n.startswith("_") and not isinstance(v, _types.ModuleType))
