"""How a run talks to people: plain lines, colour only on a terminal, rich progress.

Lines are written as-is (never wrapped or re-flowed): people and scripts grep them.
Progress and summaries go to stdout, diagnoses and failures to stderr. Colour follows
NemoClaw's rule: only when stdout is a terminal and NO_COLOR is unset (truecolor green when
COLORTERM says so). `--json` runs keep stdout for the JSON document: lines meant for stdout go
to stderr instead.

Output never interrupts a run. A stream whose reader went away (`nemoclaw backup-all | head`:
EPIPE, BrokenPipeError) or that is closed is given up: its descriptor is pointed at /dev/null
(so nothing later, not even the interpreter's last flush, fails on it), one line on stderr says
so, and the run goes on; its exit code says what happened to the work, not to the output.

Steps and errors carry data, never presentation: a `Note` is one line a step tells the user
(what happened, to which sandbox, how it went: ✓ done, ⚠ warning, ✗ failed) and a `StepError`
carries its sentence, sandbox and hint (kernel/errors.py). This module alone turns them into
text: indented by two spaces (house style; a text that comes indented keeps its own indent),
coloured on a terminal, plain in a log or a pipe, and without indent or colour, as fields, in
`--json` (`Reporter.notes`, `failure_data`).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, Literal

import attrs

from ..kernel.errors import StepError
from ..kernel.sizes import human_size

if TYPE_CHECKING:
    from rich.console import Console

_RESET = "\x1b[0m"
STDOUT_GONE = ("  Standard output was closed (its reader went away); the run goes on without printing there, "
               "and its exit code says how it ended.")


def _gone(exc: BaseException) -> bool:
    """A write failed because the stream's reader went away or the stream is closed."""
    if isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.EBADF)):
        return True
    return isinstance(exc, ValueError) and "closed file" in str(exc)


def _silence(stream: IO[str]) -> None:
    """Point the stream's descriptor at /dev/null: later writes and the final flush succeed."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except OSError:
        pass


def write_safely(stream: IO[str], text: str) -> bool:
    """Write and flush `text`; False (and the stream silenced) when its reader is gone."""
    try:
        stream.write(text)
        stream.flush()
        return True
    except (OSError, ValueError) as exc:
        if not _gone(exc):
            raise
        _silence(stream)
        return False


def color_enabled(stream: IO[str] | None = None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Style:
    """NemoClaw's colour codes; every attribute is "" when colour is off."""

    def __init__(self, enabled: bool) -> None:
        truecolor = os.environ.get("COLORTERM", "") in ("truecolor", "24bit")
        on = enabled
        self.G = ("\x1b[38;2;118;185;0m" if truecolor else "\x1b[38;5;148m") if on else ""
        self.B = "\x1b[1m" if on else ""
        self.D = "\x1b[2m" if on else ""
        self.R = _RESET if on else ""
        self.RD = "\x1b[1;31m" if on else ""
        self.YW = "\x1b[1;33m" if on else ""


Mark = Literal["ok", "warn", "fail"]
"""How it went: ✓ (green), ⚠ (yellow), ✗ (red)."""
Tone = Literal["title", "dim", "alert", "good"]
"""How a text (or a span of it) is shown on a terminal: bold, dim, yellow bold, green."""

_MARKS: dict[str, tuple[str, str]] = {"ok": ("✓", "G"), "warn": ("⚠", "YW"), "fail": ("✗", "RD")}
_TONES: dict[str, str] = {"title": "B", "dim": "D", "alert": "YW", "good": "G"}
INDENT = 2
"""House style: every line a run prints about its work starts with two spaces."""


@attrs.frozen
class Span:
    """Part of a line in its own tone (the `running` in a report row)."""

    text: str
    tone: Tone | None = None


@attrs.frozen
class Note:
    """One line (or a few) a step tells the user, as data; `render` makes it text.

    `indent` is in spaces (2: the house style; 4: a detail under the line before). `err`:
    a diagnosis or failure, for stderr; else progress or a summary, for stdout."""

    text: str | tuple[str | Span, ...]
    mark: Mark | None = None
    tone: Tone | None = None
    indent: int = INDENT
    sandbox: str | None = None
    err: bool = False

    @classmethod
    def of(cls, text: str, **kw: Any) -> "Note":
        """A note from a text that may come indented (`"    detail"`): that indent is kept, an
        unindented text gets the house indent; the note itself holds the bare text."""
        stripped = text.lstrip(" ")
        lead = len(text) - len(stripped)
        if lead and "indent" not in kw:
            kw["indent"] = lead
        return cls(stripped if lead else text, **kw)

    @property
    def plain(self) -> str:
        """The text alone: no indent, no mark, no colour."""
        if isinstance(self.text, str):
            return self.text
        return "".join(p.text if isinstance(p, Span) else p for p in self.text)

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.plain, "level": self.mark or ("error" if self.err else "info")}
        if self.sandbox:
            data["sandbox"] = self.sandbox
        return data


def render(note: Note, style: "Style") -> str:
    """The note as the lines a terminal (`style` on) or a log (`style` off) shows."""
    def paint(text: str, tone: str | None) -> str:
        code = getattr(style, _TONES[tone]) if tone else ""
        return f"{code}{text}{style.R}" if code and text else text

    if isinstance(note.text, str):
        body = note.text
    else:
        body = "".join(paint(p.text, p.tone) if isinstance(p, Span) else p for p in note.text)
    pad = " " * note.indent
    out = []
    for i, line in enumerate(body.split("\n")):
        if not line:
            out.append("")
            continue
        line = paint(line, note.tone)
        if i == 0 and note.mark:
            sym, colour = _MARKS[note.mark]
            code = getattr(style, colour)
            line = f"{code}{sym}{style.R} {line}" if code else f"{sym} {line}"
        out.append(pad + line)
    return "\n".join(out)


def failure_lines(exc: BaseException, *, state: str, step: str | None) -> list[Note]:
    """What a person reads about a failed step: a StepError's own sentence (or its details),
    any other exception as an unexpected failure of the step."""
    if isinstance(exc, StepError):
        if exc.details is not None:
            return [d if isinstance(d, Note) else Note.of(d, err=True) for d in exc.details]
        if not str(exc):
            return []
        if exc.verbatim:
            return [Note(str(exc), indent=0, err=True, sandbox=exc.sandbox)]
        return [Note(str(exc), err=True, sandbox=exc.sandbox)]
    return [Note(f"Step '{step}' (state '{state}') failed: {type(exc).__name__}: {exc}", mark="fail", err=True)]


def failure_text(exc: BaseException) -> str:
    """A StepError as the plain lines a log shows (the house indent, no colour), for a command
    that says it itself (`nemoclaw backups restore`) rather than through a run."""
    if not isinstance(exc, StepError):
        return render(Note.of(str(exc), err=True), Style(False))
    return "\n".join(render(n, Style(False)) for n in failure_lines(exc, state="", step=None))


def failure_data(exc: BaseException, *, state: str | None = None, step: str | None = None) -> dict[str, Any]:
    """A failure as `--json` fields: no indent, no colour."""
    data: dict[str, Any] = exc.as_data() if isinstance(exc, StepError) else {"message": str(exc), "kind": "error"}
    data["type"] = type(exc).__name__
    if state is not None:
        data["state"] = state
    if step is not None:
        data["step"] = step
    return data


class Reporter:
    """The one place a run writes to the user."""

    def __init__(
        self,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        *,
        json_mode: bool = False,
        quiet: bool = False,
    ) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.json_mode = json_mode
        self.quiet = quiet
        self.style = Style(color_enabled(self.stdout) and not json_mode)
        self.interactive = color_enabled(self.stdout) and not json_mode
        self._live_console: Console | None = None  # a rich Console while a progress display is on screen
        self._lost: set[int] = set()  # id() of each stream whose reader went away
        self.notes: list[Note] = []  # every note of the run, for --json

    def _write(self, stream: IO[str], text: str) -> None:
        if id(stream) not in self._lost and not write_safely(stream, text):
            self._give_up(stream)

    def _give_up(self, stream: IO[str]) -> None:
        """Stop writing to a stream whose reader went away; say so once (on stderr, if it is there)."""
        if id(stream) in self._lost:
            return
        self._lost.add(id(stream))
        _silence(stream)
        if stream is self.stdout:
            self._live_console = None  # no more live display on a stream nobody reads
            self._write(self.stderr, STDOUT_GONE + "\n")

    def line(self, text: str = "") -> None:
        """A progress or summary line (stdout; stderr in --json mode)."""
        if self.quiet:
            return
        if self._live_console is not None and not self.json_mode and id(self.stdout) not in self._lost:
            # Above the live progress display, not through it; never re-wrapped.
            try:
                self._live_console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
                return
            except (OSError, ValueError) as exc:
                if not _gone(exc):
                    raise
                self._give_up(self.stdout)
                return
        self._write(self.stderr if self.json_mode else self.stdout, text + "\n")

    def error(self, text: str = "") -> None:
        """A diagnosis or failure line (stderr)."""
        self._write(self.stderr, text + "\n")

    def lines(self, texts: list[str], *, error: bool = False) -> None:
        """Lines written as they are (upstream's wording, quoted exactly)."""
        for t in texts:
            (self.error if error else self.line)(t)

    # What steps say, as data; rendered here.

    def note(self, note: Note) -> None:
        self.notes.append(note)
        (self.error if note.err else self.line)(render(note, self.style))

    def say(self, text: str | tuple[str | Span, ...], *, err: bool = False, tone: Tone | None = None,
            indent: int = INDENT, sandbox: str | None = None) -> None:
        """A line about the run's work: progress and summaries (stdout), or `err=True` a
        diagnosis (stderr). `indent` 4 is a detail under the line before."""
        self.note(Note(text, tone=tone, indent=indent, sandbox=sandbox, err=err))

    def say_text(self, text: str, *, err: bool = False) -> None:
        """A line whose wording comes from elsewhere (a workflow file): its own indent is kept,
        a text without one gets the house indent."""
        self.note(Note.of(text, err=err))

    def ok(self, text: str | tuple[str | Span, ...], *, sandbox: str | None = None) -> None:
        """✓ Something was done and checked (stdout)."""
        self.note(Note(text, mark="ok", sandbox=sandbox))

    def warn(self, text: str, *, sandbox: str | None = None, err: bool = True) -> None:
        """⚠ Done, but not all of it, or with a caveat (stderr unless `err=False`)."""
        self.note(Note(text, mark="warn", sandbox=sandbox, err=err))

    def fail(self, text: str, *, sandbox: str | None = None) -> None:
        """✗ It failed (stderr)."""
        self.note(Note(text, mark="fail", sandbox=sandbox, err=True))

    def failure(self, exc: BaseException, *, state: str, step: str | None, debug: bool = False) -> None:
        """A failed step, as `failure_lines` words it; the hint to rerun with --debug for an
        unexpected exception."""
        for n in failure_lines(exc, state=state, step=step):
            self.note(n)
        if not isinstance(exc, StepError) and not debug:
            self.say("Rerun with --debug for a traceback.", err=True)

    @contextmanager
    def progress(self) -> Iterator["Progress"]:
        """A progress display: rich bars on a terminal, nothing extra otherwise."""
        if self.interactive and not self.quiet:
            from rich.console import Console
            from rich.progress import (
                Progress as RichProgress,
                SpinnerColumn,
                TextColumn,
                ProgressColumn,
                TimeElapsedColumn,
            )
            from rich.text import Text

            class _Speed(ProgressColumn):
                """Speed in the binary units of every other size on screen (rich's own is MB/s)."""

                def render(self, task) -> Text:  # type: ignore[no-untyped-def]
                    return Text("?" if task.speed is None else f"{human_size(int(task.speed))}/s")

            console = Console(file=self.stdout)
            # Sizes are not known before a sandbox's archive has been read: a spinner, bytes
            # and files so far, speed and elapsed time; no bar that would pretend to know.
            with RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TextColumn("{task.fields[size]:>9}"),
                TextColumn("{task.fields[files]:>5} files"),
                _Speed(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as rp:
                self._live_console = console
                try:
                    yield Progress(rp)
                finally:
                    self._live_console = None
        else:
            yield Progress(None)


class Progress:
    """Per-task byte/file counters; a no-op when not on a terminal."""

    def __init__(self, rich_progress) -> None:  # type: ignore[no-untyped-def]
        self._rp = rich_progress

    def task(self, description: str, total: int | None = None) -> "ProgressTask":
        tid = None
        if self._rp is not None:
            tid = self._rp.add_task(description, total=total, files=0, size="0 B")
            self._rp.refresh()  # on screen now, not at the next tick: a short task is seen too
        return ProgressTask(self._rp, tid)


class ProgressTask:
    def __init__(self, rp, tid) -> None:  # type: ignore[no-untyped-def]
        self._rp, self._tid = rp, tid
        self.bytes = 0
        self.files = 0

    def advance(self, nbytes: int = 0, files: int = 0) -> None:
        """`nbytes` and `files` more."""
        self.update(self.bytes + nbytes, self.files + files)

    def update(self, nbytes: int, files: int) -> None:
        """`nbytes` and `files` in all, so far (what the store's progress callbacks report)."""
        self.bytes, self.files = nbytes, files
        if self._rp is not None:
            self._rp.update(self._tid, completed=self.bytes, files=self.files, size=human_size(self.bytes))

    def done(self) -> None:
        if self._rp is not None:
            self._rp.refresh()  # its final figures on screen once, however short it was
            self._rp.remove_task(self._tid)
