"""The one way the `nemoclaw` commands say a problem and stop."""

from __future__ import annotations

import sys
from typing import NoReturn

import click


def fail(message: str, code: int = 1) -> NoReturn:
    """`message` on stderr, then exit with `code` (1 refused/failed, 2 bad input, 75 busy)."""
    click.echo(message, err=True)
    sys.exit(code)
