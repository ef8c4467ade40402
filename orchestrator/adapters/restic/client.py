"""Running the `restic` found on PATH against one repository, with `--json`, and reading what it
says (docs/reference/restic.md).

The repository goes to restic as `RESTIC_REPOSITORY` and the password stays in restic's own
environment variables, so neither is ever in an argv (visible to every user in `ps`). Every
message we make from restic's stderr is redacted (config.Repository.redact). Each command has a
declared timeout; restic dies with us (PR_SET_PDEATHSIG), so a killed run leaves no restic
writing on behind its back, only what restic's own repository format makes safe to leave: packs
no snapshot refers to yet (the next `prune` removes them) and a stale lock (`unlock`).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from . import errors as E
from .config import PASSWORD_ENVS, Repository
from .messages import BackupError, BackupStatus, BackupSummary, Snapshot, Stats, parse_backup_line, parse_json

PROBE_TIMEOUT = 120.0
"""snapshots, cat config, unlock, forget without prune: metadata only."""
INIT_TIMEOUT = 120.0
TRANSFER_TIMEOUT = float(os.environ.get("NEMOCLAW_RESTIC_TRANSFER_TIMEOUT", 6 * 3600))
"""backup, restore, prune, check: bounded by the data, so generous (override with the variable)."""
PROGRESS_FPS = "4"
"""restic prints `--json` status lines only this often when its stdout is a pipe."""

StatusCallback = Callable[[BackupStatus], None]
#: Called with restic's pid once it runs (the test kill points stop it there).
StartedCallback = Callable[[int], None]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@attrs.frozen
class Finished:
    returncode: int
    stdout: str
    stderr: str


@attrs.define
class Restic:
    """restic against `repo`. Raises errors.ResticError subclasses, never CalledProcessError."""

    repo: Repository
    program: str = "restic"

    # --- the commands ------------------------------------------------------------------------

    def init(self) -> None:
        self._check(self._run(["init"], INIT_TIMEOUT, what="init"), "init")

    def snapshots(self, tags: Sequence[str] = (), host: str | None = None) -> list[Snapshot]:
        args = ["snapshots"] + [a for t in tags for a in ("--tag", t)] + (["--host", host] if host else [])
        done = self._check(self._run(args, PROBE_TIMEOUT, what="snapshots"), "snapshots")
        return parse_json(done.stdout or "[]", list[Snapshot]) or []

    def backup(self, directory: Path, *, tags: Sequence[str], time: str, on_status: StatusCallback | None = None,
               on_started: StartedCallback | None = None) -> BackupSummary:
        """Snapshot the files of `directory` (file by file: restic reads, chunks and dedups each),
        with paths relative to it, so the snapshot's root is the directory's contents."""
        args = ["backup", "--host", self.repo.host, "--time", time] + [a for t in tags for a in ("--tag", t)] + ["."]
        summary: list[BackupSummary] = []
        problems: list[BackupError] = []

        def line(text: str) -> None:
            msg = parse_backup_line(text)
            if isinstance(msg, BackupStatus) and on_status is not None:
                on_status(msg)
            elif isinstance(msg, BackupSummary):
                summary.append(msg)
            elif isinstance(msg, BackupError):
                problems.append(msg)

        done = self._run(args, TRANSFER_TIMEOUT, what="backup", cwd=directory, on_line=line, on_started=on_started)
        if done.returncode == 3 and summary:
            # Some files could not be read: restic made a snapshot without them. It must not pass
            # for the backup (a later push would skip it by digest), so it goes again.
            self._run(["forget", summary[-1].snapshot_id], PROBE_TIMEOUT, what="forget")
            items = ", ".join(p.item for p in problems[:3]) or "some files"
            raise E.ResticError(f"restic could not read {items} of {directory}; nothing was kept in {self.repo.shown}.")
        self._check(done, "backup")
        if not summary:
            raise E.ResticError(f"restic backup to {self.repo.shown} ended without a summary; nothing is known to be stored.")
        return summary[-1]

    def restore(self, snapshot: str, target: Path, *, tags: Sequence[str] = (), host: str | None = None,
                on_started: StartedCallback | None = None) -> str | None:
        """Restore `snapshot` (an id, or `latest` of those matching `tags` and `host`) into
        `target`. Returns the short id restic says it restored (`restoring <Snapshot 1a2b3c4d
        of ...`), which tells which snapshot `latest` was; a failure carries it as `.snapshot`."""
        args = ["restore", snapshot, "--target", str(target)] + [a for t in tags for a in ("--tag", t)]
        args += ["--host", host] if host else []
        done = self._run(args, TRANSFER_TIMEOUT, what="restore", on_started=on_started)
        said = _RESTORING.search(done.stdout)
        restored = said.group(1) if said else None
        try:
            self._check(done, "restore")
        except E.ResticError as exc:
            exc.snapshot = restored
            raise
        return restored

    def forget(self, *, tags: Sequence[str], host: str, keep_last: int, prune: bool, dry_run: bool) -> str:
        args = ["forget", "--tag", ",".join(tags), "--host", host, "--group-by", "host", "--keep-last", str(keep_last)]
        args += ["--prune"] if prune else []
        args += ["--dry-run"] if dry_run else []
        return self._check(self._run(args, TRANSFER_TIMEOUT, what="forget"), "forget").stdout

    def forget_ids(self, ids: Sequence[str], *, prune: bool = False) -> None:
        args = ["forget", *(["--prune"] if prune else []), *ids]
        self._check(self._run(args, TRANSFER_TIMEOUT if prune else PROBE_TIMEOUT, what="forget"), "forget")

    def check(self, read_data_subset: str | None = None) -> str:
        args = ["check"] + (["--read-data-subset", read_data_subset] if read_data_subset else [])
        done = self._run(args, TRANSFER_TIMEOUT, what="check")
        self._check(done, "check")
        return done.stdout

    def unlock(self) -> None:
        """Remove stale locks only (restic's own judgement: its process is gone, or 30 min old)."""
        self._check(self._run(["unlock"], PROBE_TIMEOUT, what="unlock"), "unlock")

    def stats(self, mode: str = "raw-data") -> Stats:
        done = self._check(self._run(["stats", "--mode", mode], PROBE_TIMEOUT, what="stats"), "stats")
        return parse_json(done.stdout, Stats)

    # --- running -----------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(self.repo.env)
        env["RESTIC_REPOSITORY"] = self.repo.location
        env.pop("RESTIC_REPOSITORY_FILE", None)
        env.setdefault("RESTIC_PROGRESS_FPS", PROGRESS_FPS)
        return env

    def _run(self, args: list[str], timeout: float, *, what: str, cwd: Path | None = None,
             on_line: Callable[[str], None] | None = None, on_started: StartedCallback | None = None) -> Finished:
        if not self.repo.has_password:
            raise E.NoPassword(
                f"No password is set for the backup repository {self.repo.shown}: set RESTIC_PASSWORD_FILE "
                "(or RESTIC_PASSWORD_COMMAND, RESTIC_PASSWORD) to the file that holds it.")
        program = shutil.which(self.program, path=self.repo.env.get("PATH"))
        if program is None:
            raise E.ResticNotFound(
                f"restic is not installed (not on PATH), which the backup repository {self.repo.shown} needs: "
                "install it (apt-get install restic) or unset NEMOCLAW_BACKUP_REPOSITORY.")
        argv = [program, "--json", *args]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=cwd, env=self._env(), text=True, errors="replace", preexec_fn=_die_with_parent)
        except OSError as exc:
            raise E.ResticNotFound(f"restic could not be started for {self.repo.shown} ({exc.strerror}): "
                                   "check the restic on PATH.") from None
        if on_started is not None:
            on_started(proc.pid)
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        err_chunks: list[str] = []
        reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        out_lines: list[str] = []
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                if on_line is not None:
                    on_line(raw)
                else:
                    out_lines.append(raw)
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
            reader.join(timeout=5)
        if timed_out.is_set():
            raise E.ResticTimeout(f"restic {what} on the backup repository {self.repo.shown} took longer than "
                                  f"{timeout:g} s and was stopped: check the repository's server and network, then rerun.")
        return Finished(proc.returncode, "".join(out_lines), "".join(err_chunks))

    def _check(self, done: Finished, what: str) -> Finished:
        if done.returncode == 0:
            return done
        raise classify(self.repo, what, done.stderr, done.returncode)


_RESTORING = re.compile(r"^restoring <Snapshot ([0-9a-f]{8,64}) ", re.MULTILINE)
"""restic 0.14's first line of `restore` (text even with --json): which snapshot it restores."""

_UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "network is unreachable", "no route to host",
                "connection reset", "tls: ", "x509: ", "context deadline exceeded", "server misbehaving")


def classify(repo: Repository, what: str, stderr: str, returncode: int) -> E.ResticError:
    """restic's failure as one of our errors (docs/reference/restic.md: what 0.14 prints)."""
    text = repo.redact(stderr or "")
    low = text.lower()
    last = _last_words(text)
    shown = repo.shown
    if "wrong password or no key found" in low:
        return E.WrongPassword(
            f"The password does not open the backup repository {shown}: set RESTIC_PASSWORD_FILE "
            "(or RESTIC_PASSWORD_COMMAND, RESTIC_PASSWORD) to its password.", detail=last)
    if "empty password is not" in low or "resolving password failed" in low or "reading password" in low:
        return E.NoPassword(
            f"No usable password for the backup repository {shown} ({last}): check RESTIC_PASSWORD_FILE "
            "(or RESTIC_PASSWORD_COMMAND, RESTIC_PASSWORD).", detail=last)
    if any(m in low for m in _UNREACHABLE):
        return E.RepositoryUnreachable(
            f"The backup repository {shown} cannot be reached ({_reason(low)}): check that its server is up and "
            "NEMOCLAW_BACKUP_REPOSITORY is right, then rerun.", detail=last)
    if "config file already exists" in low:
        return E.RepositoryExists(f"A restic repository already exists at {shown}: nothing to create.", detail=last)
    if "is there a repository at the following location" in low or "unable to open config file" in low:
        return E.RepositoryMissing(
            f"There is no restic repository at {shown}: create it with `nemoclaw backups init-remote`, "
            "or set NEMOCLAW_BACKUP_REPOSITORY to the right one.", detail=last)
    if "repository is already locked" in low or "unable to create lock" in low:
        return E.RepositoryLocked(
            f"The backup repository {shown} is locked by another restic ({last}): wait for it to finish, then "
            "rerun (a lock left by a dead process is removed by `restic unlock`).", detail=last)
    if "ciphertext verification failed" in low or ("there were" in low and "errors" in low):
        return E.DataError(f"restic {what} read damaged data from the backup repository {shown} ({last}): "
                           "run `nemoclaw backups verify --remote` and push a fresh copy.", detail=last)
    return E.ResticError(f"restic {what} failed on the backup repository {shown} (exit {returncode}: {last}).",
                         detail=last)


def _last_words(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith("Fatal:")]
    pick = fatal[-1] if fatal else (lines[-1] if lines else "no message")
    pick = pick.removeprefix("Fatal:").strip()
    return pick if len(pick) <= 200 else pick[:200] + "..."


def _reason(low: str) -> str:
    for m in _UNREACHABLE:
        if m in low:
            return m.strip(": ")
    return "network error"


__all__ = ["Restic", "classify", "PASSWORD_ENVS", "PROBE_TIMEOUT", "TRANSFER_TIMEOUT", "INIT_TIMEOUT"]
