"""The root of the `nemoclaw` command: one subcommand per workflow file, plus the management groups.

Workflow subcommands are built from the files on the workflow path (cli/workflow_command.py,
imported only when one is run or asked for its help), so a YAML file dropped into
~/.nemoclaw/workflows/ is a new command with no Python change.
"""

from __future__ import annotations

import gc
import signal
import sys
from typing import Any

import click

from ..kernel.errors import DefinitionError
from .groups import GROUPS, load_group

class NemoclawGroup(click.Group):
    """The management command groups (cli/groups.py, imported when used) plus one command per
    workflow on the workflow path."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from ..workflow.discover import find_all

        return sorted(set(GROUPS) | set(find_all()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        try:
            return self._get_command(name)
        finally:
            _started()

    def _get_command(self, name: str) -> click.Command | None:
        if name in GROUPS:
            return load_group(name)
        from ..engine.loader import load_workflow
        from ..workflow.discover import find_all
        from .workflow_command import broken_command, workflow_command

        found = find_all()
        if name not in found:
            return None
        try:
            return workflow_command(load_workflow(found[name].path, set(found)))
        except DefinitionError as exc:
            return broken_command(name, exc.problems)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help` without importing the command groups or the step
        library: a group's one-line help is in cli/groups.py, a workflow's is its `summary`
        (workflow/summaries.py: without PyYAML when no file changed; a file that does not parse
        is listed as invalid; one that parses but names an unknown step says so when it is run
        or validated)."""
        from ..kernel.paths import Paths
        from ..workflow.discover import find_all
        from ..workflow.summaries import summaries

        from ..kernel.nemoclaw_commands import GLOBAL_COMMANDS

        rows = {name: click.Command(name, help=g.help) for name, g in GROUPS.items()}
        paths = Paths.from_env()
        # A user workflow named like a NemoClaw command is refused (the real command runs).
        found = [f for name, f in find_all(paths).items() if name not in rows and (f.builtin or name not in GLOBAL_COMMANDS)]
        for f, summary in zip(found, summaries([f.path for f in found], paths.summary_cache)):
            rows[f.name] = click.Command(f.name, short_help="(invalid workflow file)" if summary is None else summary)
        if rows:
            limit = formatter.width - 6 - max(len(n) for n in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(n, rows[n].get_short_help_str(limit)) for n in sorted(rows)])

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Where every other command goes (cli/dispatch.py)."""
        from .upstream import UPSTREAM_ENV, UpstreamProblem, find_upstream

        try:
            upstream, why = find_upstream(), f"set {UPSTREAM_ENV} to its path"
        except UpstreamProblem as exc:
            upstream, why = None, str(exc)
        formatter.write_paragraph()
        formatter.write_text("`nemoclaw <sandbox> rebuild` runs this program's rebuild-sandbox. Every other command "
                             "(onboard, list, `nemoclaw <sandbox> connect`, ...) is handed unchanged to the NemoClaw CLI"
                             + (":" if upstream else f", which was not found ({why})."))
        if upstream:
            formatter.write(f"  {upstream}\n")  # on its own line, never wrapped


@click.group(cls=NemoclawGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nemoclaw-orchestrator", prog_name="nemoclaw")
def cli() -> None:
    """NemoClaw workflows: back up and upgrade OpenShell sandboxes safely.

    Every workflow (backup-all, upgrade-sandboxes, ...) is a YAML file run on a state machine;
    guarded workflows refuse, and change nothing, when the installed OpenShell CLI and the
    running gateway disagree.
    """


def _started() -> None:
    """The command is loaded: what start-up made lives as long as the process, so it is kept
    out of the collections the run itself needs (cli/__init__.py disabled them until now)."""
    gc.freeze()
    gc.enable()


def _on_sigterm(signum: int, _frame: Any) -> None:
    from ..engine.drive import Interrupted

    raise Interrupted(signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            cli.main(prog_name="nemoclaw")
        finally:
            # The command is over: let the interpreter's shutdown skip a full collection of every
            # object the run made (0.1 s after a backup of 2,000 files; bench/README.md).
            gc.freeze()
    except KeyboardInterrupt:
        click.echo("  Interrupted.", err=True)
        sys.exit(130)
    except BaseException as exc:
        # engine.drive (tenacity, transitions) is imported only by commands that run a workflow
        # or by the SIGTERM handler, so an Interrupted can only come from a loaded module.
        drive = sys.modules.get("orchestrator.engine.drive")
        if drive is not None and isinstance(exc, drive.Interrupted):
            sys.exit(128 + exc.signum)
        raise


if __name__ == "__main__":
    main()
