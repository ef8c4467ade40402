"""The `nemoclaw` command (entry point `orchestrator.cli:main`): dispatch.py decides whether a
command line is ours or the real NemoClaw CLI's (which it execs, before click is imported);
root.py is the root group and one command per workflow file, one module per management group
(backups, gateway, runs, workflows; cli/groups.py lists them and imports each only when used),
echo.py the one way a command says a problem and stops."""


def main() -> None:
    from .dispatch import main as run

    run()


__all__ = ["main"]
