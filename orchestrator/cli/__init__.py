"""The `nemoclaw` command (entry point `orchestrator.cli:main`): root.py is the root group and
one command per workflow file, one module per management group (backups, gateway, runs,
workflows; cli/groups.py lists them and imports each only when used), echo.py the one way a
command says a problem and stops."""

from .root import main

__all__ = ["main"]
