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


class StepError(Exception):
    """A step failed in a way it understands.

    `kind` names the category a state's `retry.errors` can list (`transient`, `timeout`,
    `docker`, ...). `exit_code` overrides the exit code of the terminal state the run ends
    in (e.g. 2 for a corrupt registry file, which is bad input rather than a failure).
    `reported=True` says the step already printed what went wrong; the engine only logs it.
    `outcome` names a branch the failure takes instead of `error` when the state routes it
    (like Amazon States Language's Catch), e.g. `unrecovered` after a failed rollback.
    """

    kind: str = "error"

    def __init__(
        self, message: str, *, kind: str | None = None, exit_code: int | None = None, reported: bool = False,
        outcome: str | None = None,
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.exit_code = exit_code
        self.reported = reported
        self.outcome = outcome


class Refusal(Exception):
    """The step refuses to go on; nothing has been changed.

    `diagnosis` is printed as-is, one line per item, on stderr (never wrapped or re-flowed).
    `reason` is a short machine-readable cause for the event log and `--json` output.
    """

    def __init__(self, diagnosis: Sequence[str], *, reason: str, details: dict | None = None) -> None:
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
