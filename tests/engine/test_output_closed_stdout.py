"""A closed stdout (`| head`) never interrupts a run: the Reporter gives the stream up, says so
once on stderr and goes on. Real pipes whose read end is closed (EPIPE); the whole backup-all
against the stand-in is in tests/e2e/test_deadlines_e2e.py."""

from __future__ import annotations

import io
import os

from orchestrator.engine.output import STDOUT_GONE, Reporter, write_safely


def _closed_pipe():
    r, w = os.pipe()
    os.close(r)  # the reader went away
    return os.fdopen(w, "w")


def test_lines_to_a_stdout_nobody_reads_do_not_raise_and_say_so_once():
    stdout, stderr = _closed_pipe(), io.StringIO()
    out = Reporter(stdout=stdout, stderr=stderr)
    for i in range(3):
        out.line(f"  line {i}")
    out.error("  a failure line")
    assert stderr.getvalue().splitlines() == [STDOUT_GONE, "  a failure line"]
    stdout.write("more\n" * 10000)
    stdout.flush()  # the descriptor now points at /dev/null: the interpreter's last flush cannot fail
    stdout.close()


def test_a_closed_stderr_is_given_up_silently():
    stdout, stderr = io.StringIO(), _closed_pipe()
    out = Reporter(stdout=stdout, stderr=stderr)
    out.error("  lost")
    out.line("  kept")
    assert stdout.getvalue() == "  kept\n"
    stderr.close()


def test_write_safely_reports_a_gone_reader():
    stream = _closed_pipe()
    assert write_safely(stream, "x\n") is False
    assert write_safely(stream, "y\n") is True  # silenced: /dev/null takes it
    stream.close()


def test_a_rebuild_prompt_to_a_closed_stdout_is_asked_on_stderr(monkeypatch):
    """`upgrade-sandboxes | head`: the confirmation prompt went to a stdout nobody reads and
    raised BrokenPipeError, failing the run; it is asked on stderr instead and the answer counts."""
    import attrs

    from orchestrator.steps.facts import VersionReport, VersionRow
    from tests.support.steputil import make_ctx, run_step

    ctx = attrs.evolve(make_ctx(), out=Reporter(stdout=_closed_pipe(), stderr=io.StringIO()))
    ctx.facts["version_report"] = VersionReport(stale=[VersionRow("alpha", "1.0.0", "2.0.0", True)], unknown=[],
                                                current=[], missing=[])
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert run_step("confirm_rebuilds", ctx) == "next"
    assert ctx.facts["to_rebuild"] == ["alpha"]
    assert "  Rebuild 'alpha'? [y/N]: " in ctx.out.stderr.getvalue()
    ctx.out.stdout.close()
