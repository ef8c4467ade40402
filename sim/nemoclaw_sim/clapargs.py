"""argparse dressed as clap 4: the same error lines and exit code 2 (docs/reference/openshell-cli-and-gateway.md,
"CLI conventions")."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

from . import term


class ClapParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors read like clap's."""

    def __init__(self, *args: Any, usage_line: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.usage_line = usage_line or f"{self.prog} [OPTIONS]"

    def error(self, message: str) -> NoReturn:  # noqa: D401 - argparse hook
        m = re.match(r"unrecognized arguments: (\S+)", message)
        if m:
            arg = m.group(1)
            tip = f"to pass '{arg}' as a value, use '-- {arg}'" if arg.startswith("-") else None
            term.clap_error(f"unexpected argument '{arg}' found", self.usage_line, tip)
        m = re.match(r"argument (\S+): invalid choice: '([^']*)'", message)
        if m and not m.group(1).startswith("-"):
            term.clap_error(f"unrecognized subcommand '{m.group(2)}'", self.usage_line)
        if m:
            opt = m.group(1).split("/")[-1]
            choices = re.search(r"\(choose from (.*)\)", message)
            possible = ", ".join(c.strip(" '") for c in choices.group(1).split(",")) if choices else ""
            term.clap_error(f"invalid value '{m.group(2)}' for '{opt} <{opt.lstrip('-').upper()}>'\n"
                            f"  [possible values: {possible}]", self.usage_line)
        m = re.match(r"argument (\S+): invalid int value: '([^']*)'", message)
        if m:
            opt = m.group(1).split("/")[-1]
            term.clap_error(f"invalid value '{m.group(2)}' for '{opt} <{opt.lstrip('-').upper()}>': "
                            "invalid digit found in string", self.usage_line)
        m = re.match(r"the following arguments are required: (.*)", message)
        if m:
            if m.group(1) == "command":
                sys.stderr.write(self.format_help())
                raise SystemExit(2)
            missing = "\n".join(f"  {a.strip()}" for a in m.group(1).split(","))
            term.clap_error(f"the following required arguments were not provided:\n{missing}", self.usage_line)
        m = re.match(r"argument (\S+): expected one argument", message)
        if m:
            opt = m.group(1).split("/")[-1]
            term.clap_error(f"a value is required for '{opt} <{opt.lstrip('-').upper()}>' but none was supplied",
                            self.usage_line)
        term.clap_error(message, self.usage_line)


def reject_extras(parser: ClapParser, extras: list[str]) -> None:
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
