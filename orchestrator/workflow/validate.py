"""Rules across fields, checked before anything runs (transitions itself checks none of them:
an unknown destination or callback would only fail at trigger time)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping

from ..kernel.errors import DefinitionError
from ..kernel.nemoclaw_commands import GLOBAL_COMMANDS
from .load import Located
from .signature import PARAM_TYPE_NAMES, StepOption, StepSignature, param_type_error
from .spec import RESUME_RETRY, TERMINAL_DEFAULTS, WorkflowSpec

StepDef = StepSignature  # what validation checks a state against

STATE_NAME = re.compile(r"^[a-z0-9_]+$")
WORKFLOW_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
OPTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_COMMANDS = frozenset({"workflows", "runs", "gateway", "backups", "help", "version"})
RESERVED_OPTIONS = frozenset({"debug"})
"""Flags every workflow command has; `json` too, which a file may still declare (a bool)."""
OPTION_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str, "choice": str}
ROUTING_KEYS = ("next", "refuse", "error")


def validate(
    spec: WorkflowSpec,
    loc: Located,
    steps: Mapping[str, StepDef],
    workflow_exists: Callable[[str], bool] = lambda name: True,
    facts: Collection[str] | None = None,
    builtin: bool = False,
    child: Callable[[str], WorkflowSpec | None] | None = None,
) -> None:
    """Raise DefinitionError listing every problem found (not only the first). `facts` are the
    declared fact names (None: not checked). Only a built-in workflow may take the name of a
    NemoClaw command (the ones we implement: backup-all, upgrade-sandboxes). `child` gives the
    (unchecked) spec of a foreach state's workflow, whose options the state is checked against."""
    problems: list[str] = []
    err = problems.append
    states = spec.all_states

    if not WORKFLOW_NAME.match(spec.name):
        err(loc.error(["name"], f"'{spec.name}' is not a valid workflow name; use lowercase letters, digits and '-'"))
    elif spec.name in RESERVED_COMMANDS:
        err(loc.error(["name"], f"'{spec.name}' is a built-in command; reserved: {', '.join(sorted(RESERVED_COMMANDS))}"))
    elif spec.name in GLOBAL_COMMANDS and not builtin:
        err(loc.error(["name"], f"'{spec.name}' is a command of the NemoClaw CLI (`nemoclaw {spec.name}` runs it); "
                                "a workflow must not shadow it: rename the file and its name "
                                "(docs/reference/nemoclaw-cli.md)"))
    if spec.source is not None and spec.source.stem != spec.name:
        err(loc.error(["name"], f"'{spec.name}' must match the file name '{spec.source.stem}'"))

    for opt, ospec in spec.options.items():
        if not OPTION_NAME.match(opt):
            err(loc.error(["options", opt], f"option name '{opt}' must match [a-z][a-z0-9_]*"))
        if opt in RESERVED_OPTIONS:
            err(loc.error(["options", opt], f"'{opt}' is an option of every workflow command (--{opt}); remove it"))
        if opt == "json" and ospec.type != "bool":
            err(loc.error(["options", opt, "type"], "'json' is the --json flag of every workflow command; it is a bool"))
        if ospec.type == "choice" and not ospec.choices:
            err(loc.error(["options", opt, "type"], "type 'choice' needs a 'choices' list"))
        if ospec.short is not None and not re.fullmatch(r"[a-zA-Z]", ospec.short):
            err(loc.error(["options", opt, "short"], "short must be a single letter, e.g. y for -y"))
        if ospec.repeat and (ospec.type != "str" or ospec.default is not None):
            err(loc.error(["options", opt, "repeat"], "'repeat' is only for str options without a default"))
        bad_default = _check_default(ospec.type, ospec.default, ospec.choices)
        if bad_default:
            err(loc.error(["options", opt, "default"], bad_default))
        for bound in ("min", "max"):
            if getattr(ospec, bound) is not None and ospec.type not in ("int", "float"):
                err(loc.error(["options", opt, bound], f"'{bound}' is only for int and float options"))
        if ospec.min is not None and ospec.max is not None and ospec.min > ospec.max:
            err(loc.error(["options", opt, "min"], "min must not be greater than max"))
        if isinstance(ospec.default, (int, float)) and not isinstance(ospec.default, bool):
            if (ospec.min is not None and ospec.default < ospec.min) or (ospec.max is not None and ospec.default > ospec.max):
                err(loc.error(["options", opt, "default"], "default lies outside min..max"))
    if spec.read_only_when is not None:
        ro = spec.options.get(spec.read_only_when)
        if ro is None or ro.type != "bool":
            bools = ", ".join(n for n, o in spec.options.items() if o.type == "bool") or "none"
            err(loc.error(["read_only_when"], f"'{spec.read_only_when}' must name a bool option; bool options: {bools}"))
    for i, arg in enumerate(spec.arguments):
        if not OPTION_NAME.match(arg.name):
            err(loc.error(["arguments", i, "name"], f"argument name '{arg.name}' must match [a-z][a-z0-9_]*"))
        if arg.name in spec.options:
            err(loc.error(["arguments", i, "name"], f"'{arg.name}' is already an option"))
        if arg.name in RESERVED_OPTIONS or arg.name == "json":
            err(loc.error(["arguments", i, "name"], f"'{arg.name}' is an option of every workflow command (--{arg.name})"))

    for name, state in spec.states.items():
        where = ["states", name]
        if not STATE_NAME.match(name):
            err(loc.error(where, f"state name '{name}' must match [a-z0-9_]+ (lowercase letters, digits, '_')"))
        if state.terminal:
            for key in (*ROUTING_KEYS, "do", "retry", "foreach", "resume"):
                if getattr(state, key):
                    err(loc.error([*where, key], f"terminal state '{name}' cannot have '{key}' (a terminal ends the run)"))
            if state.branches:
                err(loc.error([*where, "branches"], f"terminal state '{name}' cannot have outgoing transitions"))
            if state.exit is None and name not in TERMINAL_DEFAULTS:
                err(loc.error(where, f"terminal state '{name}' needs an 'exit' code"))
            if name in TERMINAL_DEFAULTS and state.exit is not None and state.exit != TERMINAL_DEFAULTS[name]:
                err(loc.error([*where, "exit"], f"built-in terminal '{name}' always exits {TERMINAL_DEFAULTS[name]} "
                                                 "(scripts rely on it); declare a terminal of your own"))
            continue
        if name in TERMINAL_DEFAULTS:
            err(loc.error(where, f"'{name}' is a built-in terminal state; it cannot run a step"))
            continue
        if state.exit is not None:
            err(loc.error([*where, "exit"], "'exit' is only for terminal states (add 'terminal: true')"))
        if (state.do is None) == (state.foreach is None):
            err(loc.error(where, "a state runs exactly one of 'do: <step>' or 'foreach:'; add one (or 'terminal: true')"))
        for outcome, dest in state.routes().items():
            key = [*where, outcome] if outcome in ROUTING_KEYS else [*where, "branches", outcome]
            if dest not in states:
                err(loc.error(key, f"unknown state '{dest}'; states are: {', '.join(sorted(states))}"))
        if state.resume is not None and state.resume != RESUME_RETRY and state.resume not in states:
            err(loc.error([*where, "resume"], f"resume must be 'retry' or a state; unknown state '{state.resume}'"))
        if state.do is not None:
            _check_step(spec, loc, name, steps, err)
            if state.do in steps:
                _check_step_options(spec, loc, name, steps[state.do], err)
        if state.foreach is not None:
            fe = state.foreach
            if facts is not None:
                for key, fact in [("items", fe.items), ("results", fe.results), *(("facts", f) for f in fe.facts)]:
                    if fact not in facts:
                        err(loc.error([*where, "foreach", key], f"unknown fact '{fact}'; declared facts: {', '.join(sorted(facts))}"))
            if fe.workflow == spec.name or not workflow_exists(fe.workflow):
                err(loc.error([*where, "foreach", "workflow"], f"unknown workflow '{fe.workflow}' (or the workflow itself)"))
            elif child is not None:
                child_spec = child(fe.workflow)
                if child_spec is not None:
                    _check_foreach_child(loc, name, fe.option, child_spec, err)
                    _check_passed_options(spec, loc, name, child_spec, err)
            if state.next is None:
                err(loc.error(where, "a foreach state needs 'next'"))
            bad = set(state.branches) - {"partial"}
            for outcome in sorted(bad):
                err(loc.error([*where, "branches", outcome], f"foreach ends with 'next' or 'partial' (some items failed), not '{outcome}'"))
        if state.retry is not None:
            r = state.retry
            if r.attempts < 1:
                err(loc.error([*where, "retry", "attempts"], "attempts must be at least 1"))
            if r.backoff.initial < 0 or r.backoff.max < r.backoff.initial or r.backoff.multiplier < 1:
                err(loc.error([*where, "retry", "backoff"], "backoff needs 0 <= initial <= max and multiplier >= 1"))

    if spec.initial not in spec.states or spec.states[spec.initial].terminal:
        err(loc.error(["initial"], f"initial state '{spec.initial}' must be a declared, non-terminal state; declared: {', '.join(sorted(spec.states)) or 'none'}"))
    elif not problems:
        _check_graph(spec, loc, steps, err)
        if not problems:
            _check_facts(spec, loc, steps, err)
    if spec.guard is not None and spec.initial in spec.states and not problems:
        _check_guard(spec, loc, steps, err)
    if problems:
        raise DefinitionError(problems)


def _check_guard(spec: WorkflowSpec, loc: Located, steps: Mapping[str, StepDef], err: Callable[[str], None]) -> None:
    """A guarded workflow reaches its guard check (a step whose signature `guards`: the
    preflight) before any step that talks to OpenShell or Docker or changes anything; only
    `local` (read-only, local files) steps may come first."""
    guards = sorted(n for n, s in steps.items() if s.guards)
    wanted = " or ".join(f"'do: {n}'" for n in guards) or "a step that guards"
    seen: set[str] = set()
    todo = [spec.initial]
    has_guard = False
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = spec.all_states[name]
        if state.terminal:
            continue
        step = steps.get(state.do or "")
        if step is not None and step.guards:
            has_guard = True
            continue
        if step is None or not step.local:
            what = f"step '{state.do}'" if state.do else "a foreach"
            err(loc.error(["states", name], f"guarded workflow runs {what} before {wanted}; only local read-only steps may come first"))
            continue
        todo.extend(v for k, v in state.routes().items() if k != "error")
    if not has_guard:
        err(loc.error(["guard"], f"a guarded workflow must run {wanted} (the guard is its wording)"))


def _check_default(kind: str, default: object, choices: list[str] | None) -> str | None:
    if default is None:
        return None
    expected = {"bool": bool, "int": int, "float": (int, float), "str": str, "choice": str}[kind]
    if isinstance(default, bool) and kind != "bool":
        return f"default must be of type {kind}"
    if not isinstance(default, expected):  # type: ignore[arg-type]
        return f"default must be of type {kind}"
    if kind == "choice" and choices and default not in choices:
        return f"default '{default}' is not one of: {', '.join(choices)}"
    return None


def _check_step(spec: WorkflowSpec, loc: Located, name: str, steps: Mapping[str, StepDef], err: Callable[[str], None]) -> None:
    state = spec.states[name]
    where = ["states", name]
    step = steps.get(state.do or "")
    if step is None:
        err(loc.error([*where, "do"], f"unknown step '{state.do}'; registered steps: {', '.join(sorted(steps))}"))
        return
    for key, value in state.with_.items():
        if key not in step.params:
            valid = ", ".join(sorted(step.params)) or "none"
            err(loc.error([*where, "with", key], f"step '{step.name}' takes no parameter '{key}'; it takes: {valid}"))
            continue
        bad = param_type_error(value, step.params[key])
        if bad:
            err(loc.error([*where, "with", key], f"parameter '{key}' of step '{step.name}': {bad}"))
    if step.mutates and state.resume is None:
        err(loc.error(where, f"step '{step.name}' changes sandboxes or backups: say what a resumed run does if a "
                             "crash interrupts it here, 'resume: retry' (run it again) or 'resume: <state>'"))
    for outcome in state.branches:
        if outcome not in step.outcomes:
            err(loc.error([*where, "branches", outcome], f"step '{step.name}' never ends with '{outcome}'; it can end with: {', '.join(sorted(step.outcomes))}"))
    for outcome in sorted(step.outcomes):
        if outcome == "next":
            if state.next is None:
                err(loc.error(where, f"step '{step.name}' can end with 'next' but the state has no 'next'"))
        elif outcome not in state.branches:
            err(loc.error(where, f"step '{step.name}' can end with '{outcome}'; route it under 'branches: {{{outcome}: <state>}}'"))
    if state.next is not None and "next" not in step.outcomes:
        err(loc.error([*where, "next"], f"step '{step.name}' never ends with 'next'; it can end with: {', '.join(sorted(step.outcomes))}"))
    if step.refuses and state.refuse is None:
        err(loc.error(where, f"step '{step.name}' may refuse; add 'refuse: refused' (or another terminal)"))
    if state.refuse is not None and not step.refuses:
        err(loc.error([*where, "refuse"], f"step '{step.name}' never refuses"))
    if state.refuse is not None and not spec.all_states.get(state.refuse, state).terminal:
        err(loc.error([*where, "refuse"], "'refuse' must lead to a terminal state (a refusal changes nothing and ends the run)"))
    if state.retry is not None and step.commits:
        err(loc.error([*where, "retry"], f"step '{step.name}' commits data and must not be retried"))


def _check_graph(spec: WorkflowSpec, loc: Located, steps: Mapping[str, StepDef], err: Callable[[str], None]) -> None:
    states = spec.all_states
    edges = {name: set(s.transitions().values()) for name, s in states.items()}
    seen = {spec.initial}
    todo = [spec.initial]
    while todo:
        for dest in edges[todo.pop()]:
            if dest not in seen:
                seen.add(dest)
                todo.append(dest)
    for name in spec.states:
        if name not in seen:
            err(loc.error(["states", name], f"state '{name}' is unreachable from initial state '{spec.initial}'"))
    # A non-terminal state must be able to end the run other than by an error.
    normal = {name: {d for o, d in s.transitions().items() if o != "error"} for name, s in states.items()}
    # A state whose step can never end normally (e.g. `fail`, `rollback`) ends the run itself.
    ends = {name for name, s in states.items() if s.terminal or (s.do is not None and s.do in steps and not steps[s.do].outcomes)}
    changed = True
    while changed:
        changed = False
        for name, dests in normal.items():
            if name not in ends and dests & ends:
                ends.add(name)
                changed = True
    for name in spec.states:
        if name in seen and name not in ends:
            err(loc.error(["states", name], f"no terminal state (done, refused, failed, ...) can be reached from '{name}'"))


def _check_facts(spec: WorkflowSpec, loc: Located, steps: Mapping[str, StepDef], err: Callable[[str], None]) -> None:
    """Every fact a state reads is written by an earlier state on every path to it (a
    must-analysis over the transitions; an `error` edge carries no writes of its source, and
    a resume edge carries what the interrupted state had)."""
    states = spec.all_states

    def reads_writes(name: str) -> tuple[frozenset[str], frozenset[str]]:
        s = states[name]
        if s.foreach is not None:
            return frozenset({s.foreach.items}), frozenset({s.foreach.results})
        sig = steps.get(s.do or "")
        return (sig.reads, sig.writes) if sig is not None else (frozenset(), frozenset())

    every: frozenset[str] = frozenset().union(*(reads_writes(n)[1] for n in states)) | frozenset().union(
        *(reads_writes(n)[0] for n in states))
    have: dict[str, frozenset[str]] = {name: every for name in states}
    have[spec.initial] = frozenset()
    edges: list[tuple[str, str, bool]] = []  # (source, dest, carries the source's writes)
    for name, s in states.items():
        for outcome, dest in s.transitions().items():
            edges.append((name, dest, outcome != "error"))
        if s.resume not in (None, RESUME_RETRY):
            edges.append((name, s.resume, False))
    changed = True
    while changed:
        changed = False
        for dest in states:
            if dest == spec.initial:
                continue
            incoming = [have[src] | (reads_writes(src)[1] if carries else frozenset())
                        for src, d, carries in edges if d == dest]
            new = frozenset.intersection(*incoming) if incoming else frozenset()
            if new != have[dest]:
                have[dest], changed = new, True
    for name, s in spec.states.items():
        reads, _ = reads_writes(name)
        for fact in sorted(reads - have[name]):
            writers = sorted(n for n in spec.states if fact in reads_writes(n)[1])
            what = f"step '{s.do}'" if s.do else "its foreach"
            hint = f" (it is written by state(s): {', '.join(writers)})" if writers else \
                f" (no state of this workflow writes it; add a state whose step writes '{fact}')"
            key = ["states", name, "do"] if s.do else ["states", name, "foreach"]
            err(loc.error(key, f"{what} reads fact '{fact}', which is not written on every path before state '{name}'{hint}"))


def _check_step_options(spec: WorkflowSpec, loc: Located, name: str, step: StepDef, err: Callable[[str], None]) -> None:
    """The workflow declares every option the step needs, of the type the step reads it as."""
    arguments = {a.name for a in spec.arguments}
    for opt, want in sorted(step.options.items()):
        declared = spec.options.get(opt)
        if declared is not None:
            have = OPTION_TYPES.get(declared.type)
            if have is not want.type:
                err(loc.error(["options", opt, "type"], f"state '{name}' runs step '{step.name}', which reads option "
                                                        f"'{opt}' as {PARAM_TYPE_NAMES.get(want.type, want.type.__name__)}; "
                                                        f"declare it with type {_yaml_type(want)}"))
            elif want.choices and declared.type == "choice":
                extra = [c for c in declared.choices or [] if c not in want.choices]
                if extra:
                    err(loc.error(["options", opt, "choices"], f"state '{name}' runs step '{step.name}', which knows "
                                                               f"only {', '.join(want.choices)} for option '{opt}', "
                                                               f"not {', '.join(extra)}"))
        elif opt in arguments:
            if want.type is not str:
                err(loc.error(["arguments"], f"state '{name}' runs step '{step.name}', which reads '{opt}' as "
                                             f"{PARAM_TYPE_NAMES.get(want.type, want.type.__name__)}; an argument is a "
                                             f"string: declare it under 'options' with type {_yaml_type(want)}"))
        elif want.required:
            what = f" ({want.help.rstrip('.')})" if want.help else ""
            err(loc.error(["states", name, "do"], f"state '{name}' runs step '{step.name}', which needs option "
                                                  f"'{opt}'{what}; workflow '{spec.name}' does not declare it: add it "
                                                  f"under 'arguments' (or 'options')"))


def _yaml_type(want: StepOption) -> str:
    if want.choices:
        return f"choice (choices: {', '.join(want.choices)})"
    return next(k for k, v in OPTION_TYPES.items() if v is want.type)


def _check_foreach_child(loc: Located, name: str, option: str | None, child: WorkflowSpec,
                         err: Callable[[str], None]) -> None:
    """The child workflow takes the item (`option`, default its subject: its first argument)
    and needs no other argument."""
    takes = [*child.options, *(a.name for a in child.arguments)]
    if option is None:
        option = child.subject
        if option is None:
            err(loc.error(["states", name, "foreach"], f"workflow '{child.name}' has no argument to receive each item; "
                                                       f"name the option that does with 'option:' (it takes: "
                                                       f"{', '.join(takes) or 'none'})"))
            return
    if option not in takes:
        err(loc.error(["states", name, "foreach", "option"], f"workflow '{child.name}' has no option or argument "
                                                             f"'{option}' to receive each item; it takes: "
                                                             f"{', '.join(takes) or 'none'}"))
    for arg in child.arguments:
        if arg.required and arg.name != option:
            err(loc.error(["states", name, "foreach"], f"workflow '{child.name}' needs argument '{arg.name}', which a "
                                                       f"foreach gives no value (it gives each item as '{option}')"))


def _check_passed_options(spec: WorkflowSpec, loc: Located, name: str, child: WorkflowSpec,
                          err: Callable[[str], None]) -> None:
    """A foreach passes each option of this workflow that the child also has to the child: the
    two must be of one type (and the child's choices must hold this one's)."""
    for opt, mine in spec.options.items():
        theirs = child.options.get(opt)
        if theirs is None:
            continue
        if OPTION_TYPES.get(mine.type) is not OPTION_TYPES.get(theirs.type):
            err(loc.error(["options", opt, "type"], f"state '{name}' passes option '{opt}' to workflow '{child.name}', "
                                                    f"where it is of type {theirs.type}, not {mine.type}"))
        elif theirs.type == "choice" and mine.type == "choice":
            extra = [c for c in mine.choices or [] if c not in (theirs.choices or [])]
            if extra:
                err(loc.error(["options", opt, "choices"], f"state '{name}' passes option '{opt}' to workflow "
                                                           f"'{child.name}', which knows only "
                                                           f"{', '.join(theirs.choices or [])}, not {', '.join(extra)}"))
