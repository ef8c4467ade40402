"""rebuild-sandbox: back up → delete → create from the target image → wait Ready → restore →
verify → record, with rollback (nemoclaw-behaviour §3.3).

`rebuild_target` leaves `ctx.data["rebuild_plan"]` and `ctx.data["backup_targets"]`; the
backup itself is the `snapshot`/`commit_backups` pair of backup-all, whose committed path
(`ctx.data["committed"][name]`) the restore and the rollback use. The backup is never deleted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..agent_version import probe_version
from ..engine.errors import StepError
from ..engine.steps import step
from ..openshell import capture_openshell, list_args, parse_listing
from ..openshell.cli import installed_openshell_version, version_gte
from ..registry import SandboxEntry, update_agent_version
from ..sandbox_containers import find_sandbox_container
from ..store import load_agent, load_manifest, restore_backup
from ..store.errors import StoreError
from ..store.restore import read_back, restore_names

if TYPE_CHECKING:
    from ..engine.context import RunContext

OPERATION_TIMEOUT = 120.0


@attrs.frozen
class RebuildPlan:
    name: str
    agent: str
    current: str | None
    expected: str | None
    previous_image: str
    target_image: str


def _plan(ctx: "RunContext") -> RebuildPlan:
    plan = ctx.data.get("rebuild_plan")
    if plan is None:
        raise StepError("  no rebuild plan: the workflow must run rebuild_target first")
    return plan


def _with_tag(image: str, tag: str) -> str:
    repo = image.rsplit("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return f"{repo}:{tag}"


@step("rebuild_target")
def rebuild_target(ctx: "RunContext") -> None:
    """Check the sandbox is registered and running; work out the current and target images."""
    out, st = ctx.out, ctx.out.style
    name = str(ctx.options["name"])
    entry = next((e for e in ctx.data.get("registry", []) if isinstance(e, SandboxEntry) and e.name == name), None)
    if entry is None:
        raise StepError(f"  Sandbox '{name}' is not registered in {ctx.paths.registry_file}.", exit_code=1)
    if name not in ctx.data.get("sandbox_list", {}).get("ready", []):
        raise StepError(f"  Sandbox '{name}' is not running. Cannot back up state.")
    try:
        agent = load_agent(entry.agent)
    except StoreError as exc:
        raise StepError(f"  {exc}", exit_code=2) from None
    container = find_sandbox_container(name)
    previous = container.attrs.get("Config", {}).get("Image") or (container.image.tags or [""])[0]
    if not previous:
        raise StepError(f"  Cannot tell which image sandbox '{name}' runs.")
    expected = agent.expected_version
    target = ctx.options.get("image") or (_with_tag(previous, expected) if expected else None)
    if not target:
        raise StepError(f"  No target image for '{name}': agent '{agent.name}' declares no expected version; pass --image.")
    plan = RebuildPlan(name, agent.name, probe_version(container, agent), expected, previous, target)
    ctx.data["rebuild_plan"] = plan
    ctx.data["backup_targets"] = [name]
    out.line(f"  {st.B}Rebuild sandbox '{name}'{st.R}")
    out.line(f"    Current: {plan.current or '?'} ({previous})")
    out.line(f"    Target:  {plan.expected or '?'} ({target})")
    out.line("  Backing up sandbox state...")


def _openshell(args: list[str], what: str, timeout: float = OPERATION_TIMEOUT) -> str:
    result = capture_openshell(args, timeout=timeout)
    if result.status != 0:
        raise StepError(f"  {what} failed (openshell exit {result.status}): {result.output.strip()}")
    return result.output


@step("delete_sandbox")
def delete_sandbox(ctx: "RunContext") -> None:
    """`openshell sandbox delete NAME`."""
    plan = _plan(ctx)
    ctx.out.line(f"  Deleting sandbox '{plan.name}'...")
    _openshell(["sandbox", "delete", plan.name], f"Deleting sandbox '{plan.name}'")
    ctx.data["rebuild_deleted"] = True
    ctx.event("sandbox_deleted", sandbox=plan.name, image=plan.previous_image)


def _create(ctx: "RunContext", plan: RebuildPlan, image: str) -> None:
    _openshell(["sandbox", "create", "--name", plan.name, "--from", image], f"Creating sandbox '{plan.name}' from {image}")
    ctx.event("sandbox_created", sandbox=plan.name, image=image)


@step("create_sandbox")
def create_sandbox(ctx: "RunContext") -> None:
    """`openshell sandbox create --name NAME --from <target image>`."""
    plan = _plan(ctx)
    ctx.out.line("  Creating new sandbox with current image...")
    _create(ctx, plan, plan.target_image)


def _wait_ready(name: str, timeout: float) -> None:
    args = list_args(installed_openshell_version())
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        result = capture_openshell(args, timeout=30)
        listing = parse_listing(result.stdout, result.output)
        if name in listing.ready:
            return
        last = dict((e.name, e.phase) for e in listing.entries).get(name, "not listed")
        if time.monotonic() > deadline:
            raise StepError(f"  Sandbox '{name}' did not become Ready within {timeout:.0f} s (phase: {last}).", kind="timeout")
        time.sleep(0.5)


@step("wait_ready", params=("timeout",))
def wait_ready(ctx: "RunContext") -> None:
    """Poll `openshell sandbox list` until the sandbox is Ready (`with.timeout`, default 120 s)."""
    plan = _plan(ctx)
    _wait_ready(plan.name, float(ctx.params.get("timeout", OPERATION_TIMEOUT)))


def _backup_dir(ctx: "RunContext", name: str) -> Path:
    path = ctx.data.get("committed", {}).get(name)
    if path is None:
        raise StepError(f"  No committed backup of '{name}' in this run.")
    return Path(path)


def _restore(ctx: "RunContext", name: str) -> Any:
    backup = _backup_dir(ctx, name)
    container = find_sandbox_container(name)
    try:
        result = restore_backup(container, backup, load_manifest(backup))
    except StoreError as exc:
        raise StepError(f"  Restoring '{name}' from {backup} failed: {exc}") from None
    if not result.ok:
        raise StepError(f"  Restored files of '{name}' do not match the backup: {result.mismatch}")
    return result


@step("restore_sandbox")
def restore_sandbox(ctx: "RunContext") -> None:
    """Write the backup committed by this run back into the new sandbox."""
    plan = _plan(ctx)
    ctx.out.line("  Restoring workspace state...")
    result = _restore(ctx, plan.name)
    ctx.event("sandbox_restored", sandbox=plan.name, files=result.files, bytes=result.bytes)


@step("verify_rebuild")
def verify_rebuild(ctx: "RunContext") -> None:
    """The new sandbox runs the expected agent version and its files hash equal to the backup."""
    plan = _plan(ctx)
    container = find_sandbox_container(plan.name)
    agent = load_agent(plan.agent)
    version = probe_version(container, agent)
    if plan.expected and (version is None or not (version_gte(version, plan.expected) and version_gte(plan.expected, version))):
        raise StepError(f"  Sandbox '{plan.name}' reports agent version {version or 'unknown'}, expected {plan.expected}.")
    backup = _backup_dir(ctx, plan.name)
    manifest = load_manifest(backup)
    mismatch = read_back(container, manifest, restore_names(backup, manifest))
    if mismatch is not None:
        raise StepError(f"  Sandbox '{plan.name}' files differ from the backup after restore: {mismatch}")


@step("record_version")
def record_version(ctx: "RunContext") -> None:
    """Update the registry's agentVersion and say the rebuild succeeded."""
    plan = _plan(ctx)
    if plan.expected:
        update_agent_version(ctx.paths.registry_file, plan.name, plan.expected)
    st = ctx.out.style
    ctx.out.line(f"  {st.G}✓{st.R} Sandbox '{plan.name}' rebuilt successfully")


@step("rollback_rebuild", outcomes=(), params=("timeout",))
def rollback_rebuild(ctx: "RunContext") -> None:
    """After a failure past the delete: recreate from the previous image and restore the same
    backup; if that fails too, print the commands that restore it by hand. Always ends failed."""
    plan = _plan(ctx)
    out = ctx.out
    cause = str(ctx.last_error).strip() if ctx.last_error else "unknown error"
    backup = ctx.data.get("committed", {}).get(plan.name)
    out.error(f"  Rebuild of '{plan.name}' failed in '{ctx.last_error_state}': {cause}")
    out.error(f"  Rolling back '{plan.name}' to {plan.previous_image} and restoring {backup}...")
    try:
        existing = parse_listing(*_list_texts())
        if plan.name in existing.live:
            _openshell(["sandbox", "delete", plan.name], f"Deleting the half-built sandbox '{plan.name}'")
        _create(ctx, plan, plan.previous_image)
        _wait_ready(plan.name, float(ctx.params.get("timeout", OPERATION_TIMEOUT)))
        _restore(ctx, plan.name)
    except (StepError, StoreError, OSError) as exc:
        out.error(f"  Rollback of '{plan.name}' failed too: {str(exc).strip()}")
        out.error("  Restore it by hand; the backup is kept:")
        out.error(f"    openshell sandbox create --name {plan.name} --from {plan.previous_image}")
        if backup:
            out.error(f"    nemoclaw backups restore {plan.name} --from {Path(backup).name}")
        err = StepError(f"rollback of '{plan.name}' failed after: {cause}")
        err.reported = True  # type: ignore[attr-defined]
        raise err from None
    ctx.event("rolled_back", sandbox=plan.name, image=plan.previous_image, backup=str(backup))
    err = StepError(
        f"  Rolled back '{plan.name}': it runs {plan.previous_image} again with its files restored from {backup}. "
        f"The rebuild failed: {cause}"
    )
    raise err


def _list_texts() -> tuple[str, str]:
    result = capture_openshell(list_args(installed_openshell_version()), timeout=30)
    return result.stdout, result.output
