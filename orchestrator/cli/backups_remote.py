"""`nemoclaw backups init-remote|push|pull` and `backups list|prune|verify --remote`: the
off-host copies in the restic repository `NEMOCLAW_BACKUP_REPOSITORY` (docs/backups.md,
"Off-host copies"; the work itself is steps/_replication.py).

`register(backups_group)` adds the three commands and the `--remote` flag of the three existing
ones (their local behaviour is untouched: without `--remote` they run as before). push and pull
hold the writer lock like a workflow run (pull changes the store; push reads backups a prune
could remove); list, verify and prune --remote change nothing local.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .echo import fail
from .writer_lock import writer_lock

if TYPE_CHECKING:
    from ..adapters.restic import Restic
    from ..store import BackupStore

NOT_SET = ("  NEMOCLAW_BACKUP_REPOSITORY is not set: set it to a restic repository (a path, rest:..., s3:..., "
           "sftp:...) and its password in RESTIC_PASSWORD_FILE; see docs/backups.md, \"Off-host copies\".")


def _restic() -> "Restic":
    from ..adapters.restic import Restic, configured

    repo = configured()
    if repo is None:
        fail(NOT_SET)
    return Restic(repo)


def _store() -> "BackupStore":
    from ..adapters.agents.definitions import load_agent
    from ..kernel.paths import Paths
    from ..store import BackupStore

    return BackupStore(Paths.from_env().backups_root, load_agent)


def _fail_with(exc: Exception) -> NoReturn:
    text = str(exc)
    fail(text if text.startswith("  ") else f"  {text}", getattr(exc, "exit_code", None) or 1)


@contextmanager
def _guarded() -> Iterator[None]:
    """restic's and the store's failures as their one sentence, never a traceback."""
    from ..kernel.errors import StepError, StoreError

    try:
        yield
    except (StepError, StoreError) as exc:
        _fail_with(exc)


# --- init-remote, push, pull --------------------------------------------------------------------


@click.command("init-remote")
def init_remote_cmd() -> None:
    """Create the restic repository NEMOCLAW_BACKUP_REPOSITORY names (its password from
    RESTIC_PASSWORD_FILE, RESTIC_PASSWORD_COMMAND or RESTIC_PASSWORD)."""
    restic = _restic()
    with _guarded():
        restic.init()
    click.echo(f"  Created the backup repository {restic.repo.shown}. Keep its password safe: without it the "
               "copies cannot be read.")


@click.command("push")
@click.argument("names", nargs=-1)
def push_cmd(names: tuple[str, ...]) -> None:
    """Push committed local backups (of sandboxes NAMES) that the repository lacks; one already
    there (the same manifest digest) is skipped. Exit 1 if any failed."""
    from ..engine.output import Reporter
    from ..kernel.sizes import human_size
    from ..kernel.paths import Paths
    from ..steps._replication import known_pushed, manifest_digest, push_backup, remember_pushed, remote_backups

    restic = _restic()
    store = _store()
    out = Reporter()
    failed = 0
    from concurrent.futures import ThreadPoolExecutor

    with _guarded(), writer_lock(finish_interrupted=True), ThreadPoolExecutor(1) as pool:
        # What the repository holds, asked while the local store is read and while the first
        # push starts (restic's key derivation alone takes about half a second): push_backup.
        asked = pool.submit(remote_backups, restic)
        cache = Paths.from_env().nemoclaw_dir / "cache"
        hints = known_pushed(cache, restic)
        listing = store.scan(names[0]) if len(names) == 1 else store.scan()
        backups = [b for b in reversed(listing.backups) if not names or b.sandbox in names]  # oldest first
        for i in listing.invalid:
            if not names or i.sandbox in names:
                out.error(f"  Not pushed: invalid backup {i.path}: {i.error}")
        if not backups:
            asked.result()  # the repository's problem, if it has one, before ours
            fail("  No valid local backups to push." if not names else f"  No valid local backups of {', '.join(names)}.")
        out.line(f"  Pushing {len(backups)} backup(s) to {restic.repo.shown}...")
        pushed = skipped = 0
        done: list[Any] = []
        from ..adapters.restic import RepositoryMissing, RepositoryUnreachable, WrongPassword
        from ..kernel.errors import StepError

        with out.progress() as progress:
            for b in backups:
                row = progress.task(f"Pushing '{b.sandbox}' {b.timestamp}")
                try:
                    res = push_backup(restic, b, held=asked, hints=hints,
                                      on_status=lambda s, r=row: r.update(s.bytes_done, s.files_done))  # type: ignore[misc]  # mypy infers no lambda with a default
                except (RepositoryMissing, RepositoryUnreachable, WrongPassword):
                    raise
                except StepError as exc:
                    if asked.exception() is not None:  # the listing failed: the whole push stops, as it said
                        raise asked.exception() from None  # type: ignore[misc]
                    row.done()
                    failed += 1
                    out.error(f"  ✗ {b.sandbox} {b.timestamp}: not pushed: {str(exc).strip()}")
                    continue
                row.done()
                done.append(b)
                if res.skipped:
                    skipped += 1
                    out.line(f"  - {b.sandbox} {b.timestamp}: already in the repository, skipped")
                else:
                    pushed += 1
                    out.line(f"  ✓ {b.sandbox} {b.timestamp}: pushed as snapshot {res.snapshot_id} "
                             f"({human_size(res.bytes)}, {human_size(res.data_added)} new in the repository)")
        remember_pushed(cache, restic, {r.digest for r in asked.result()} | {manifest_digest(b.path) for b in done})
        out.line(f"  Pushed {pushed}, skipped {skipped} already there, failed {failed}.")
    if failed:
        raise SystemExit(1)


@click.command("pull")
@click.argument("name")
@click.argument("timestamp", required=False, default="latest")
@click.option("--host", help="The host whose copy to pull (default: this host's, or the only host's).")
def pull_cmd(name: str, timestamp: str, host: str | None) -> None:
    """Pull sandbox NAME's backup TIMESTAMP (default latest) from the repository into the local
    store under its original timestamp, after checking every file against its manifest. Then
    `backups restore NAME` or `rebuild-sandbox NAME --from-backup TIMESTAMP` use it."""
    from ..kernel.paths import Paths
    from ..store.staging import Staging
    from ..steps._replication import pull

    restic = _restic()
    store = _store()

    def chosen(remote: Any) -> None:
        click.echo(f"  Pulling '{name}' {remote.timestamp} (snapshot {remote.short_id} from host {remote.host}) "
                   f"from {restic.repo.shown}...")

    with _guarded(), writer_lock(finish_interrupted=True) as me:
        staging = Staging.create(Paths.from_env().staging_root, me)
        try:
            remote, dest = pull(restic, store, staging, name, timestamp, host, on_chosen=chosen)
        finally:
            staging.discard()
    from ..steps._replication import known_pushed, remember_pushed

    cache = Paths.from_env().nemoclaw_dir / "cache"
    remember_pushed(cache, restic, known_pushed(cache, restic) | {remote.digest})  # a later push waits for its listing
    if dest is None:
        click.echo(f"  '{name}' {remote.timestamp} is already in the local store; nothing pulled.")
        return
    from ..store import load_manifest

    files = len(load_manifest(dest).files)
    click.echo(f"  ✓ Pulled '{name}' {remote.timestamp}: {files} files match its manifest → {dest}")
    click.echo(f"  To use it: nemoclaw backups restore {name} --from {remote.timestamp}   or   "
               f"nemoclaw rebuild-sandbox {name} --from-backup {remote.timestamp}")


# --- list / prune / verify --remote -------------------------------------------------------------


def _list_remote(name: str | None, rehash: bool, as_json: bool) -> None:
    from ..kernel.sizes import human_size
    from ..steps._replication import local_copy, remote_backups

    if rehash:
        fail("  --verify re-hashes local backups; for the repository use `nemoclaw backups verify --remote`.", 2)
    restic = _restic()
    store = _store()
    with _guarded():
        remotes = remote_backups(restic, name)
        rows: list[dict[str, Any]] = [{"sandbox": r.sandbox, "timestamp": r.timestamp, "host": r.host, "bytes": r.bytes,
                 "snapshot": r.snapshot_id, "manifest_sha256": r.digest, "local": local_copy(store, r) is not None}
                for r in remotes]
    if as_json:
        click.echo(json.dumps({"repository": restic.repo.shown, "backups": rows}, indent=2))
        return
    if not rows:
        click.echo(f"  The backup repository {restic.repo.shown} holds no backups" + (f" of '{name}'." if name else "."))
        return
    table = [["SANDBOX", "TIMESTAMP", "HOST", "SIZE", "SNAPSHOT", "LOCAL"]] + [
        [r["sandbox"], r["timestamp"], r["host"], human_size(r["bytes"]), r["snapshot"][:8], "yes" if r["local"] else "no"]
        for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    click.echo(f"  In {restic.repo.shown}:")
    for row in table:
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _prune_remote(keep: int, name: str | None, dry_run: bool) -> None:
    from ..steps._replication import remote_backups

    if keep < 1:
        fail("  --remote needs --keep 1 or more: the repository's copies are the ones a dead host is recovered from.", 2)
    restic = _restic()
    with _guarded():
        remotes = [r for r in remote_backups(restic, name) if r.host == restic.repo.host]
        by_sandbox: dict[str, list[Any]] = {}
        for r in remotes:  # newest first
            by_sandbox.setdefault(r.sandbox, []).append(r)
        doomed = [r for rs in by_sandbox.values() for r in rs[keep:]]
        verb = "Would remove" if dry_run else "Removed"
        if doomed and not dry_run:
            restic.unlock()  # only locks restic itself finds stale (a killed run's)
            for sandbox, rs in by_sandbox.items():
                if rs[keep:]:
                    restic.forget_ids([r.snapshot_id for r in rs[keep:]], prune=True)
        for r in doomed:
            click.echo(f"  {verb} {r.sandbox} {r.timestamp} (snapshot {r.short_id}) from {restic.repo.shown}")
        kept = len(remotes) - len(doomed)
        click.echo(f"  {verb} {len(doomed)} copy(ies) of host {restic.repo.host}, kept {kept}; other hosts' copies "
                   "are not touched.")


def _verify_remote(name: str | None, all_: bool, sample: float | None, read_data_subset: str | None) -> None:
    if name or all_ or sample is not None:
        fail("  --remote checks the whole repository (restic check): NAME, --all and --sample are for local backups; "
             "use --read-data-subset to read pack data.", 2)
    restic = _restic()
    with _guarded():
        restic.unlock()  # a killed run's stale lock would stop check (restic removes only locks it finds stale)
        restic.check(read_data_subset)
    what = (f"its structure, and the data of the packs in subset {read_data_subset}" if read_data_subset
            else "its structure and index (no pack data read: add --read-data-subset 10% to read some)")
    click.echo(f"  ✓ restic check of {restic.repo.shown} found no errors in {what}.")


# --- registration -------------------------------------------------------------------------------

_REMOTE_HELP = {
    "list": "List the copies in the backup repository (NEMOCLAW_BACKUP_REPOSITORY) instead, with whether a local copy exists.",
    "prune": "Apply --keep to this host's copies in the backup repository (restic forget --prune) instead of local backups.",
    "verify": "Check the backup repository (restic check) instead of local backups.",
}


def _with_remote(cmd: click.Command, impl: Callable[..., None], extra: tuple[click.Option, ...] = ()) -> None:
    """Give an existing command `--remote` (and `extra` options, valid only with it)."""
    original = cmd.callback
    assert original is not None
    cmd.params.append(click.Option(["--remote"], is_flag=True, help=_REMOTE_HELP[cmd.name or ""]))
    cmd.params.extend(extra)

    @functools.wraps(original)
    def callback(**kwargs: Any) -> Any:
        remote = kwargs.pop("remote", False)
        extras = {o.name: kwargs.pop(o.name or "", None) for o in extra}
        if remote:
            return impl(**kwargs, **extras)
        given = [f"--{k.replace('_', '-')}" for k, v in extras.items() if v is not None]
        if given:
            fail(f"  {', '.join(given)} needs --remote.", 2)
        return original(**kwargs)

    cmd.callback = callback


def register(group: click.Group) -> None:
    for command in (init_remote_cmd, push_cmd, pull_cmd):
        group.add_command(command)
    _with_remote(group.commands["list"], _list_remote)
    _with_remote(group.commands["prune"], _prune_remote)
    subset = click.Option(["--read-data-subset"],
                          help="With --remote: also read this subset of the pack data ('10%', 'n/t', '500M').")
    _with_remote(group.commands["verify"], _verify_remote, (subset,))
