"""upgrade-sandboxes: classify sandboxes by agent version, confirm, report (§3.1).

`classify_versions` reads `ctx.data["registry"]` and `ctx.data["sandbox_list"]["ready"]`;
with `--check` it only reports (exit 0, writes nothing). `confirm_rebuilds` leaves
`ctx.data["rebuild"]`, the names a `foreach` state rebuilds; `rebuild_report` reads that
state's results (named by `with.results_of`).

A running sandbox whose container could not be reached (no Docker engine) is reported with
that reason, never told to be started, and makes `--check` exit 1: it could not check. While
another run holds the writer lock (e.g. mid-rebuild), a sandbox that is not running is said
to be possibly held by that run, not just "stopped".
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ..agent_version import VersionCheck, check_version
from ..engine.errors import StepError
from ..engine.steps import step
from ..registry import SandboxEntry
from ..store import load_agent
from ..store.errors import StoreError
from ..store.lock import read_lock
from ._openshell_common import listed_container

if TYPE_CHECKING:
    from ..engine.context import RunContext


@step("classify_versions", outcomes=("next", "current", "checked"))
def classify_versions(ctx: "RunContext") -> str:
    """Sort sandboxes into stale / unknown / current; print the report (and stop there with --check)."""
    out, st = ctx.out, ctx.out.style
    registry: list[SandboxEntry] = ctx.data.get("registry", [])
    listing = ctx.data.get("sandbox_list", {})
    live = set(listing.get("ready", []))
    checks: list[VersionCheck] = []
    why: dict[str, str] = {}  # running sandboxes whose container could not be reached, and why
    holder = _live_lock_holder(ctx)
    for entry in registry:
        try:
            agent = load_agent(entry.agent)
        except StoreError as exc:
            raise StepError(f"  {exc}", exit_code=2) from None
        container = None
        if entry.name in live:
            try:
                # By the listing's id: --check writes nothing, not even the CLI's last-used
                # sandbox (NemoClaw #7279).
                container = listed_container(ctx, entry.name)
            except StepError as exc:
                container = None
                why[entry.name] = str(exc).strip().split(": ", 1)[0] if "Docker engine" in str(exc) else str(exc).strip()
        check = check_version(entry, agent, container)
        if entry.name in live and container is None:
            check = VersionCheck(entry.name, True, agent.expected_version, None, "unavailable")
        checks.append(check)
    stale = [c for c in checks if c.stale]
    unknown = [c for c in checks if not c.stale and c.unknown]
    ctx.data["version_checks"] = checks
    ctx.data["summary"] = {
        "stale": [{"sandbox": c.name, "current": c.current, "expected": c.expected, "running": c.running} for c in stale],
        "unknown": [{"sandbox": c.name, "expected": c.expected, "running": c.running} for c in unknown],
        "current": [c.name for c in checks if c not in stale and c not in unknown],
    }
    if not stale and not unknown:
        out.line("  All sandboxes are up to date.")
        return "current"
    held = f"not running; run {holder.run_id} (pid {holder.pid}) holds the lock and may be rebuilding it" if holder else None
    if stale:
        out.line("")
        out.line(f"  {st.B}Stale sandboxes:{st.R}")
        for c in stale:
            status = f"{st.G}running{st.R}" if c.running else f"{st.D}{held or 'stopped'}{st.R}"
            out.line(f"    {c.name}  v{c.current or '?'} → v{c.expected}  ({status})")
    if unknown:
        out.line("")
        out.line(f"  {st.YW}Unknown version:{st.R}")
        for c in unknown:
            status = "running" if c.running else (held or "stopped")
            if c.name in why:
                status += f"; could not probe: {why[c.name]}"
            out.line(f"    {c.name}  v? → v{c.expected}  ({status})")
    out.line("")
    if ctx.options.get("check"):
        unreachable = [c for c in unknown if c.name in why]
        others = [c for c in unknown if c.name not in why]
        if stale:
            out.line(f"  {len(stale)} sandbox(es) need upgrading.")
        if others:
            out.line(f"  {len(others)} sandbox(es) could not be version-checked; start them and rerun, or rebuild manually.")
        if unreachable:
            reasons = "; ".join(sorted({why[c.name] for c in unreachable}))
            out.error(f"  {len(unreachable)} running sandbox(es) could not be version-checked: {reasons}. Fix that and rerun.")
            ctx.exit_code = 1  # could not check: never a clean answer
        if holder:
            out.line(f"  Another run ({holder.run_id}, pid {holder.pid}) holds the lock: sandboxes it is rebuilding may "
                     "show as not running. Rerun --check when it has finished.")
        out.line("  Run `nemoclaw upgrade-sandboxes` to rebuild them.")
        return "checked"
    ctx.data["stale"] = stale
    return "next"


def _live_lock_holder(ctx: "RunContext") -> Any:
    """The live run holding the writer lock (a read-only --check takes none), or None."""
    holder = read_lock(ctx.paths.lock_file)
    if holder is None or holder.run_id == ctx.run_id or not holder.is_alive():
        return None
    return holder


@step("confirm_rebuilds", outcomes=("next", "none"))
def confirm_rebuilds(ctx: "RunContext") -> str:
    """Pick the running stale sandboxes, asking per sandbox unless --yes/--auto."""
    out, st = ctx.out, ctx.out.style
    stale: list[VersionCheck] = ctx.data.get("stale", [])
    running = [c for c in stale if c.running]
    stopped = [c for c in stale if not c.running]
    if stopped:
        out.line(f"  {st.D}Skipping {len(stopped)} stopped sandbox(es) — start them first.{st.R}")
    if not running:
        out.line("  No running stale sandboxes to rebuild.")
        return "none"
    skip_confirm = bool(ctx.options.get("yes") or ctx.options.get("auto"))
    chosen = []
    for c in running:
        if not skip_confirm and not _ask(ctx, f"  Rebuild '{c.name}'? [y/N]: "):
            out.line(f"  Skipped '{c.name}'.")
            continue
        chosen.append(c.name)
    ctx.data["rebuild"] = chosen
    return "next" if chosen else "none"


def _ask(ctx: "RunContext", prompt: str) -> bool:
    stream = ctx.out.stderr if ctx.out.json_mode else ctx.out.stdout
    stream.write(prompt)
    stream.flush()
    answer = sys.stdin.readline() if sys.stdin and not sys.stdin.closed else ""
    return answer.strip().lower() in ("y", "yes")


@step("rebuild_report", outcomes=("next", "partial"), params=("results_of",))
def rebuild_report(ctx: "RunContext") -> str:
    """Summarize the per-sandbox rebuilds of a foreach state."""
    out, st = ctx.out, ctx.out.style
    state = ctx.params.get("results_of", "rebuild")
    results: dict[str, dict] = ctx.results.get(state, {})
    rebuilt = [n for n, r in results.items() if r["exit_code"] == 0]
    failed = [n for n, r in results.items() if r["exit_code"] != 0]
    for name in failed:
        out.error(f"  {st.YW}⚠{st.R} Failed to rebuild '{name}': {results[name].get('message') or results[name].get('reason') or results[name]['terminal']}")
    out.line("")
    if rebuilt:
        out.line(f"  {st.G}✓{st.R} {len(rebuilt)} sandbox(es) rebuilt.")
    if failed:
        out.line(f"  {st.YW}⚠{st.R} {len(failed)} sandbox(es) failed — see errors above.")
    summary = ctx.data.setdefault("summary", {})
    summary["rebuilt"], summary["failed"] = rebuilt, failed
    return "partial" if failed else "next"
