"""The error types every layer shares.

`StoreError`/`ManifestError`: the store's (store/errors.py derives the rest from them) and the
agent definitions' (adapters/agents/definitions.py). The rest are what a step raises to steer
the run.

Steps never print their own failure; they raise one of these and the engine routes it:
`Refusal` to the `refused` terminal (exit 1, diagnosis on stderr), anything else to `failed`
(or the state's declared `error:` target). `kind` is what a state's `retry.on` list matches.
"""

from __future__ import annotations

from collections.abc import Sequence


def unindent(text: str) -> str:
    """`text` without the indentation of its first line (taken off every line that has it): a
    message is data; the output layer (engine/output.py) indents it for a terminal."""
    lines = text.split("\n")
    lead = len(lines[0]) - len(lines[0].lstrip(" "))
    if not lead:
        return text
    return "\n".join(line[lead:] if line[:lead].isspace() else line.lstrip(" ") for line in lines)


class StepError(Exception):
    """A step failed in a way it understands: what happened (`message`), to which sandbox
    (`sandbox`), what to do (`hint`). Data only: no indent (one given is taken off) and no colour;
    the output layer formats it for a terminal, a log and `--json`.

    `str(exc)` is the whole sentence, `message` then `; hint` (the hint carries its own full
    stop). `kind` names the category a state's `retry.errors` can list (`transient`, `timeout`,
    `docker`, ...). `exit_code` overrides the exit code of the terminal state the run ends in
    (e.g. 2 for a corrupt registry file, which is bad input rather than a failure).
    `details`: what a person reads instead of the sentence (the lines of a failed rollback and
    the commands that undo it by hand); an empty tuple when what went wrong has been shown
    already and the sentence is only the account for the journal, `--json` and a parent run.
    `outcome` names a branch the failure takes instead of `error` when the state routes it
    (like Amazon States Language's Catch), e.g. `unrecovered` after a failed rollback.
    `verbatim` (a class attribute): upstream's own text, shown as-is at the start of the line.
    """

    kind: str = "error"
    verbatim: bool = False

    def __init__(
        self, message: str, *, kind: str | None = None, exit_code: int | None = None,
        sandbox: str | None = None, hint: str | None = None, details: Sequence[str] | None = None,
        outcome: str | None = None,
    ) -> None:
        self.message = message if self.verbatim else unindent(message)
        self.hint = unindent(hint) if hint else None
        super().__init__(self.message + (f"; {self.hint}" if self.hint else ""))
        if kind is not None:
            self.kind = kind
        self.exit_code = exit_code
        self.sandbox = sandbox
        self.details = None if details is None else tuple(details)
        self.outcome = outcome

    def as_data(self) -> dict[str, object]:
        """The structured fields of `--json` and the journal."""
        data: dict[str, object] = {"message": self.message, "kind": self.kind}
        if self.sandbox:
            data["sandbox"] = self.sandbox
        if self.hint:
            data["hint"] = self.hint
        return data


class Refusal(Exception):
    """The step refuses to go on; nothing has been changed.

    `diagnosis` is printed as-is, one line per item, on stderr (never wrapped or re-flowed).
    `reason` is a short machine-readable cause for the event log and `--json` output.
    """

    def __init__(self, diagnosis: Sequence[str], *, reason: str, details: dict[str, object] | None = None) -> None:
        super().__init__(reason)
        self.diagnosis = list(diagnosis)
        self.reason = reason
        self.details = dict(details or {})


class DefinitionError(Exception):
    """A workflow file (or another definition) is invalid; exit code 2, nothing runs.

    Each item of `problems` is one complete message naming file, line and key.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StoreError(Exception):
    """Base of every error the store raises; `str(exc)` is a complete, user-facing sentence."""


class ManifestError(StoreError):
    """A manifest (or agent definition) file is missing, not JSON/YAML, or has the wrong shape."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
