"""One workflow file as a `nemoclaw` subcommand: its options and arguments as click parameters,
plus `--json` and `--debug`, which every workflow command has; its run, and its --json document
(one object per run, docs/workflows.md "--json"); a file that does not load is a command that
prints why and exits 2. Imported when a workflow command is run or asked for its help, not for
`nemoclaw --help`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..workflow.spec import OptionSpec, WorkflowSpec

_TYPES: dict[str, Any] = {}

JSON_HELP = "Print one JSON object describing the run on stdout (progress goes to stderr)."


def _step_help(spec: WorkflowSpec) -> dict[str, str]:
    """What the steps a workflow runs say of the options they read (their signatures), for the
    options its file gives no `help:`."""
    from ..engine.registry import signatures  # loaded already: the file was checked against them

    sigs = signatures()
    helps: dict[str, str] = {}
    for state in spec.states.values():
        sig = sigs.get(state.do or "")
        for name, o in (sig.options.items() if sig is not None else ()):
            if o.help:
                helps.setdefault(name, o.help)
    return helps


def _option(name: str, o: OptionSpec, fallback: str = "") -> click.Option:
    if not o.help and fallback:
        import attrs

        o = attrs.evolve(o, help=fallback)
    flag = "--" + name.replace("_", "-")
    decls = [flag] + ([f"-{o.short}"] if o.short else [])
    if o.type == "bool":
        return click.Option([*decls, name], is_flag=True, default=bool(o.default), help=o.help)
    if o.repeat:  # the values, joined by spaces, reach the step as one str (workflow/spec.py)
        return click.Option([*decls, name], type=click.STRING, multiple=True, help=o.help,
                            callback=lambda _ctx, _param, values: " ".join(values) if values else None)
    kind = click.Choice(o.choices or []) if o.type == "choice" else _TYPES[o.type]
    if o.type == "int" and (o.min is not None or o.max is not None):
        kind = click.IntRange(None if o.min is None else int(o.min), None if o.max is None else int(o.max))
    elif o.type == "float" and (o.min is not None or o.max is not None):
        kind = click.FloatRange(o.min, o.max)
    return click.Option([*decls, name], type=kind, default=o.default, show_default=o.default is not None, help=o.help)


def workflow_command(spec: WorkflowSpec) -> click.Command:
    _TYPES.update(int=click.INT, float=click.FLOAT, str=click.STRING)
    helps = _step_help(spec)
    params: list[click.Parameter] = [_option(n, o, helps.get(n, "")) for n, o in spec.options.items()]
    if "json" not in spec.options:  # a file may still declare it (a bool), as older ones did
        params.append(click.Option(["--json", "json"], is_flag=True, help=JSON_HELP))
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
    epilog = "\n".join(f"  {a.name}: {a.help or helps.get(a.name)}" for a in spec.arguments
                       if a.help or helps.get(a.name)) or None
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
    from ..engine.output import STDOUT_GONE, failure_data, write_safely

    # What the run told the user, as fields: no indent, no colour (engine/output.py renders the terminal's).
    if ctx is not None and ctx.last_error is not None:
        doc["error"] = failure_data(ctx.last_error, state=ctx.last_error_state)
    if ctx is not None and ctx.out.notes:
        doc["messages"] = [n.as_data() for n in ctx.out.notes]

    # A closed stdout never changes the exit code: the run is over, only its document is lost.
    if not write_safely(sys.stdout, json.dumps(doc, indent=2, default=str) + "\n"):
        write_safely(sys.stderr, STDOUT_GONE + "\n")


def broken_command(name: str, problems: list[str]) -> click.Command:
    def callback(**_: Any) -> None:
        for p in problems:
            click.echo(p, err=True)
        sys.exit(2)

    return click.Command(name, callback=callback, help="(invalid workflow file: run `nemoclaw workflows validate`)",
                         short_help="(invalid workflow file)", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
