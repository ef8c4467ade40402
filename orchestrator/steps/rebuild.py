"""rebuild-sandbox: back up → delete → create from the target image → wait Ready → restore →
verify → record, with rollback (nemoclaw-behaviour §3.3).

`rebuild_target` leaves `ctx.data["rebuild_plan"]` and `ctx.data["backup_targets"]`; the
backup itself is the `snapshot`/`commit_backups` pair of backup-all, whose committed path
(`ctx.data["committed"][name]`) the restore and the rollback use. The backup is never deleted.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..agent_version import probe_version
from ..engine.errors import StepError
from ..engine.steps import step
from ..openshell import capture_openshell, list_args, parse_listing
from ..openshell.cli import installed_openshell_version, strip_ansi, version_gte
from ..registry import SandboxEntry, update_agent_version
from ..sandbox_containers import find_sandbox_container, manifest_at_root
from ..store import load_agent, load_manifest, restore_backup
from ..store.errors import StoreError
from ..store.restore import read_back, restore_names
from ._openshell_common import listed_container

if TYPE_CHECKING:
    from ..engine.context import RunContext

OPERATION_TIMEOUT = 120.0
# tonic's rendering of a gRPC status, as `openshell` prints it: `status: Internal, message: "..."`.
_GRPC_STATUS = re.compile(r'status:\s*(\w+),\s*message:\s*"((?:[^"\\]|\\.)*)"', re.S)


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
    lost = ctx.data.get("rebuild_unrecovered") or []
    if lost:
        # An earlier item of this upgrade could not be rolled back: whatever broke it (the
        # gateway cannot create sandboxes, say) would take this sandbox down too.
        raise StepError(
            f"  Not rebuilding '{name}': the rebuild of '{lost[0]}' could not be rolled back; "
            "restore it as shown above before rebuilding more sandboxes."
        )
    entry = next((e for e in ctx.data.get("registry", []) if isinstance(e, SandboxEntry) and e.name == name), None)
    if entry is None:
        raise StepError(f"  Sandbox '{name}' is not registered in {ctx.paths.registry_file}.", exit_code=1)
    if name not in ctx.data.get("sandbox_list", {}).get("ready", []):
        raise StepError(f"  Sandbox '{name}' is not running. Cannot back up state.")
    try:
        agent = load_agent(entry.agent)
    except StoreError as exc:
        raise StepError(f"  {exc}", exit_code=2) from None
    container = listed_container(ctx, name)
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
    # ctx.data is shared by the items of an upgrade-sandboxes foreach: nothing of an earlier
    # sandbox's rebuild may leak into this one's.
    ctx.data["rebuild_deleted"] = False
    ctx.data.pop("committed", None)
    ctx.data.pop("captures", None)
    out.line(f"  {st.B}Rebuild sandbox '{name}'{st.R}")
    out.line(f"    Current: {plan.current or '?'} ({previous})")
    out.line(f"    Target:  {plan.expected or '?'} ({target})")
    out.line("  Backing up sandbox state...")


def openshell_error(output: str) -> str:
    """The gist of a failed `openshell` call: the gRPC status and message, else its first line."""
    text = strip_ansi(output)
    m = _GRPC_STATUS.search(text)
    if m:
        message = " ".join(m.group(2).replace('\\"', '"').split())
        return f"{m.group(1)}: {message}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no output"


class OpenShellFailed(StepError):
    def __init__(self, what: str, status: int, output: str) -> None:
        self.gist = openshell_error(output)
        super().__init__(f"  {what} failed: {self.gist} (openshell exit {status})")


def _openshell(args: list[str], what: str, timeout: float = OPERATION_TIMEOUT) -> str:
    result = capture_openshell(args, timeout=timeout)
    if result.status != 0:
        raise OpenShellFailed(what, result.status, result.output)
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
        result = restore_backup(container, backup, manifest_at_root(load_manifest(backup), container))
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
    manifest = manifest_at_root(load_manifest(backup), container)
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


_WHAT_FAILED = {
    "delete": "deleting the old sandbox",
    "create": "creating the new sandbox",
    "wait": "waiting for the new sandbox to be Ready",
    "restore": "restoring the backup into the new sandbox",
    "verify": "verifying the new sandbox",
}


def _cause(ctx: "RunContext") -> str:
    exc = ctx.last_error
    if exc is None:
        return "unknown error"
    return getattr(exc, "gist", None) or " ".join(str(exc).split())


@step("rollback_rebuild", outcomes=(), params=("timeout",))
def rollback_rebuild(ctx: "RunContext") -> None:
    """After a failure past the backup: recreate from the previous image and restore the same
    backup; if that fails too, print the commands that restore it by hand. Always ends failed.

    The failure itself was already printed by the engine; the StepError raised here is the
    one-line account an upgrade-sandboxes run repeats as `Failed to rebuild '<name>': ...`."""
    plan = _plan(ctx)
    out = ctx.out
    what = _WHAT_FAILED.get(ctx.last_error_state or "", f"state '{ctx.last_error_state}'")
    cause = _cause(ctx)
    backup = ctx.data.get("committed", {}).get(plan.name)
    try:
        existing = parse_listing(*_list_texts())
    except (StepError, OSError):
        existing = None  # the rollback below will say what is wrong, and print the commands
    if (existing is not None and not ctx.data.get("rebuild_deleted") and plan.name in existing.ready
            and _runs_image(plan.name, plan.previous_image)):
        # The delete itself failed and the sandbox is still there, untouched: nothing to undo.
        out.error(f"  Sandbox '{plan.name}' was not deleted; it still runs {plan.previous_image}. Nothing was changed.")
        raise StepError(f"{what} failed ({cause}); the sandbox was left as it was", reported=True)
    out.error(f"  Rolling back '{plan.name}' to {plan.previous_image} and restoring {backup}...")
    try:
        if backup is None:
            raise StepError(f"  No committed backup of '{plan.name}' in this run.")
        if existing is None:
            existing = parse_listing(*_list_texts())
        if plan.name in existing.live:
            _openshell(["sandbox", "delete", plan.name], f"Deleting the half-built sandbox '{plan.name}'")
        _create(ctx, plan, plan.previous_image)
        _wait_ready(plan.name, float(ctx.params.get("timeout", OPERATION_TIMEOUT)))
        _restore(ctx, plan.name)
    except (StepError, StoreError, OSError) as exc:
        out.error(f"  Rollback of '{plan.name}' failed too: {getattr(exc, 'gist', None) or ' '.join(str(exc).split())}")
        out.error(f"  The backup is kept in {backup}. Restore the sandbox by hand:" if backup else "  Restore the sandbox by hand:")
        out.error(f"    openshell sandbox delete {plan.name}    # only if it is still listed")
        out.error(f"    openshell sandbox create --name {plan.name} --from {plan.previous_image}")
        if backup:
            out.error(f"    nemoclaw backups restore {plan.name} --from {Path(backup).name}")
        ctx.data.setdefault("rebuild_unrecovered", []).append(plan.name)
        ctx.event("rollback_failed", sandbox=plan.name, image=plan.previous_image, backup=str(backup), error=str(exc))
        raise StepError(f"{what} failed ({cause}) and so did the rollback; restore it by hand as shown above", reported=True) from None
    ctx.event("rolled_back", sandbox=plan.name, image=plan.previous_image, backup=str(backup))
    out.error(f"  Rolled back '{plan.name}': it runs {plan.previous_image} again with its files restored from {backup}.")
    raise StepError(f"{what} failed ({cause}); rolled back to {plan.previous_image} with its files restored", reported=True)


def _runs_image(name: str, image: str) -> bool:
    try:
        container = find_sandbox_container(name)
    except StepError:
        return False
    return container.attrs.get("Config", {}).get("Image") == image


def _list_texts() -> tuple[str, str]:
    result = capture_openshell(list_args(installed_openshell_version()), timeout=30)
    return result.stdout, result.output
