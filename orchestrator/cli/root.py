"""The root of the `nemoclaw` command: one subcommand per workflow file, plus the management groups.

Workflow subcommands are built at start-up from the files on the workflow path, so a YAML file
dropped into ~/.nemoclaw/workflows/ is a new command with no Python change.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from ..kernel.errors import DefinitionError
from .groups import GROUPS, load_group

if TYPE_CHECKING:
    from ..workflow.spec import OptionSpec, WorkflowSpec

_TYPES: dict[str, Any] = {}


def _option(name: str, o: OptionSpec) -> click.Option:
    flag = "--" + name.replace("_", "-")
    decls = [flag] + ([f"-{o.short}"] if o.short else [])
    if o.type == "bool":
        return click.Option([*decls, name], is_flag=True, default=bool(o.default), help=o.help)
    kind = click.Choice(o.choices or []) if o.type == "choice" else _TYPES[o.type]
    if o.type == "int" and (o.min is not None or o.max is not None):
        kind = click.IntRange(None if o.min is None else int(o.min), None if o.max is None else int(o.max))
    elif o.type == "float" and (o.min is not None or o.max is not None):
        kind = click.FloatRange(o.min, o.max)
    return click.Option([*decls, name], type=kind, default=o.default, show_default=o.default is not None, help=o.help)


def workflow_command(spec: WorkflowSpec) -> click.Command:
    _TYPES.update(int=click.INT, float=click.FLOAT, str=click.STRING)
    params: list[click.Parameter] = [_option(n, o) for n, o in spec.options.items()]
    params += [click.Argument([a.name], required=a.required) for a in spec.arguments]
    params.append(click.Option(["--debug"], is_flag=True, help="Show tracebacks of unexpected errors."))

    def callback(debug: bool, **options: Any) -> None:
        from ..engine.output import Reporter
        from ..engine.run import run_workflow  # imported when a workflow runs, not for --help
        from ..kernel.paths import Paths

        json_mode = bool(options.get("json"))
        result = run_workflow(spec, options, paths=Paths.from_env(), out=Reporter(json_mode=json_mode), debug=debug)
        if json_mode and result.context is not None:
            _print_json_summary(result)
        sys.exit(result.exit_code)

    help_text = spec.summary + ("\n\n" + spec.description.strip() if spec.description.strip() else "")
    epilog = "\n".join(f"  {a.name}: {a.help}" for a in spec.arguments if a.help) or None
    return click.Command(
        spec.name,
        params=params,
        callback=callback,
        help=help_text,
        short_help=spec.summary,
        options_metavar=spec.usage or "[OPTIONS]",
        epilog=epilog,
    )


def _print_json_summary(result: Any) -> None:
    import json

    from ..engine.facts import declared, dump

    ctx = result.context
    doc = {"run": result.run_id, "workflow": result.workflow, "terminal": result.terminal, "exit_code": result.exit_code, "reason": result.reason}
    reports = {name: fd for name, fd in declared().items() if fd.report}
    summary: dict[str, Any] = {}
    for name in reports:
        if ctx is not None and name in ctx.facts:
            summary.update(dump(name, ctx.facts[name]))
    if ctx is not None and "registry" in ctx.facts and not ctx.facts["registry"]:
        summary["registered"] = 0
    if summary:
        doc["summary"] = summary
    click.echo(json.dumps(doc, indent=2, default=str))


def _broken_command(name: str, problems: list[str]) -> click.Command:
    def callback(**_: Any) -> None:
        for p in problems:
            click.echo(p, err=True)
        sys.exit(2)

    return click.Command(name, callback=callback, help="(invalid workflow file: run `nemoclaw workflows validate`)",
                         short_help="(invalid workflow file)", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


class NemoclawGroup(click.Group):
    """The management command groups (cli/groups.py, imported when used) plus one command per
    workflow on the workflow path."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from ..workflow.discover import find_all

        return sorted(set(GROUPS) | set(find_all()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in GROUPS:
            return load_group(name)
        from ..engine.loader import load_workflow
        from ..workflow.discover import find_all

        found = find_all()
        if name not in found:
            return None
        try:
            return workflow_command(load_workflow(found[name].path, set(found)))
        except DefinitionError as exc:
            return _broken_command(name, exc.problems)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help` without importing the command groups or the step
        library: a group's one-line help is in cli/groups.py, a workflow's is its `summary`
        (a file that does not parse is listed as invalid; one that parses but names an unknown
        step says so when it is run or validated)."""
        from ..workflow.discover import find_all, summary_of

        rows = {name: click.Command(name, help=g.help) for name, g in GROUPS.items()}
        for name, found in find_all().items():
            if name in rows:
                continue
            summary = summary_of(found.path)
            rows[name] = click.Command(name, short_help="(invalid workflow file)" if summary is None else summary)
        if rows:
            limit = formatter.width - 6 - max(len(n) for n in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(n, rows[n].get_short_help_str(limit)) for n in sorted(rows)])


@click.group(cls=NemoclawGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nemoclaw-orchestrator", prog_name="nemoclaw")
def cli() -> None:
    """NemoClaw workflows: back up and upgrade OpenShell sandboxes safely.

    Every workflow (backup-all, upgrade-sandboxes, ...) is a YAML file run on a state machine;
    guarded workflows refuse, and change nothing, when the installed OpenShell CLI and the
    running gateway disagree.
    """


def _on_sigterm(signum: int, _frame: Any) -> None:
    from ..engine.run import Interrupted

    raise Interrupted(signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(prog_name="nemoclaw")
    except KeyboardInterrupt:
        click.echo("  Interrupted.", err=True)
        sys.exit(130)
    except BaseException as exc:
        # engine.run (tenacity, transitions) is imported only by commands that run a workflow
        # or by the SIGTERM handler, so an Interrupted can only come from a loaded module.
        run = sys.modules.get("orchestrator.engine.run")
        if run is not None and isinstance(exc, run.Interrupted):
            sys.exit(128 + exc.signum)
        raise


if __name__ == "__main__":
    main()
