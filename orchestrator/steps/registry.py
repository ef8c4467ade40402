"""`read_registry`: the registered sandboxes, before anything talks to OpenShell; and what the
mutating steps ask of the registry (docs/reference/nemoclaw-registry.md).

Local and read-only, so a guarded workflow runs it before its preflight: an empty registry
ends the run with exit 0 and no OpenShell call at all, as upstream does (it works with no
`openshell` installed). Every registry root is read (the default port's and each gateway
port's). Writes the `registry` fact (steps/facts.py).

`verify_identity` is called by the steps that delete, rebuild or restore a sandbox: a row that
records an identity fingerprint must match the live sandbox's id, else that sandbox is refused
with nothing of it changed. `follow_identity` moves the fingerprint to a recreated sandbox.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters import nemoclaw_registry as reg
from ..adapters.nemoclaw_registry import SandboxEntry, read_all
from ..engine.registry import implements
from ..kernel.errors import StepError
from .facts import REGISTRY

if TYPE_CHECKING:
    from ..engine.context import RunContext

_ID_LINE = re.compile(r"^\s*Id:\s*(\S+)\s*$", re.MULTILINE)


@implements("read_registry")
def read_registry(ctx: "RunContext") -> str:
    """Read every ~/.nemoclaw registry root; end with `empty` (printing `with.empty_message`) if
    none, unless the run's option named by `with.empty_ok_with` is set (rebuild-sandbox
    --from-backup on a host that lost its registry registers the sandbox from its backup)."""
    entries = read_all(ctx.paths.nemoclaw_dir)
    ctx.set(REGISTRY, entries)
    empty_ok = ctx.params.get("empty_ok_with")
    if not entries and not (empty_ok and ctx.options.get(str(empty_ok))):
        message = ctx.params.get("empty_message")
        if message:
            ctx.out.say_text(message)
        return "empty"
    return "next"


def entry_of(ctx: "RunContext", name: str) -> SandboxEntry | None:
    """The registered entry of sandbox `name`: from this run's `registry` fact, or read now
    when the workflow has no `read_registry` state."""
    entries = ctx.get(REGISTRY, None)
    found = next((e for e in entries if e.name == name), None) if entries is not None else None
    if found is None:  # no `read_registry` state, or registered by this run (register_from_backup)
        found = next((e for e in read_all(ctx.paths.nemoclaw_dir) if e.name == name), None)
    return found


def register_from_backup(ctx: "RunContext", name: str, backup_dir: str) -> None:
    """rebuild-sandbox --from-backup of a sandbox the registry does not know (a host that lost
    ~/.nemoclaw): register it with the row its backup recorded, in the file it was in, its
    identity fingerprint (when it had one) the recreated sandbox's. Idempotent; a row that is
    there already (NemoClaw wrote one meanwhile) is left as it is (docs/backups.md, "A dead host")."""
    from ..store import load_manifest

    if entry_of(ctx, name) is not None:
        return
    manifest = load_manifest(Path(backup_dir))
    if manifest.registry_row is None or manifest.registry_file is None:
        raise StepError(f"Sandbox '{name}' is not registered and its backup {backup_dir} does not record its "
                        "registry row: register it with NemoClaw (nemoclaw onboard), then rerun.", exit_code=1)
    row = dict(manifest.registry_row)
    if reg.FINGERPRINT in row:
        current = live_id(name)
        if current is None:
            raise StepError(f"OpenShell did not say the id of the recreated sandbox '{name}'; it was not registered.")
        row[reg.FINGERPRINT] = reg.fingerprint_of(current)
    if reg.register_row(ctx.paths.nemoclaw_dir, manifest.registry_file, name, row):
        where = ctx.paths.nemoclaw_dir / manifest.registry_file
        ctx.event("sandbox_registered", sandbox=name, registry=str(where), backup=backup_dir)
        ctx.out.say(f"Registered sandbox '{name}' in {where} with the registry row its backup recorded.")


def refuse_problem(entry: SandboxEntry) -> None:
    """A row we cannot act on is an error for its sandbox (never a silent skip)."""
    if entry.problem:
        raise StepError(f"Sandbox '{entry.name}' cannot be used: {entry.problem}.", kind="registry", exit_code=1)


def live_id(name: str) -> str | None:
    """The OpenShell id of the live sandbox `name` (`openshell sandbox get`'s `Id:`), or None
    when OpenShell does not know the sandbox."""
    from ..adapters.openshell import capture_openshell
    from ..adapters.openshell.cli import strip_ansi

    result = capture_openshell(["sandbox", "get", name], timeout=30)
    if result.status != 0:
        return None
    m = _ID_LINE.search(strip_ansi(result.stdout))
    return m.group(1) if m else None


def verify_identity(ctx: "RunContext", name: str, *, absent_ok: bool = False) -> None:
    """Before a delete, rebuild or restore: the live sandbox must be the one its registry row
    names (IdentityMismatch otherwise, naming both ids). A row without a fingerprint is not
    checked; with `absent_ok`, a sandbox OpenShell no longer knows has nothing to check."""
    entry = entry_of(ctx, name)
    if entry is None or entry.fingerprint is None:
        return
    current = live_id(name)
    if current is None and absent_ok:
        return
    try:
        reg.check_identity(entry, current)
    except StepError:
        ctx.event("identity_refused", sandbox=name, recorded=entry.fingerprint, live_id=current)
        raise


def follow_identity(ctx: "RunContext", name: str) -> None:
    """After a recreate: the row's fingerprint becomes the new sandbox's (idempotent)."""
    entry = entry_of(ctx, name)
    if entry is None or entry.fingerprint is None:
        return
    current = live_id(name)
    if current is None:
        raise StepError(f"OpenShell did not say the id of the recreated sandbox '{name}'; its registry "
                        "fingerprint was not updated.")
    if reg.follow_identity(entry, current, nemoclaw_dir=ctx.paths.nemoclaw_dir):
        ctx.event("identity_followed", sandbox=name, fingerprint=reg.fingerprint_of(current))


def record_agent_version(ctx: "RunContext", name: str, version: str) -> None:
    """Write the sandbox's `agentVersion` into the registry file its row came from."""
    entry = entry_of(ctx, name)
    if entry is None:
        raise StepError(f"Sandbox '{name}' is not registered.")
    reg.update_agent_version(entry, version, nemoclaw_dir=ctx.paths.nemoclaw_dir)
