"""The `nemoclaw` command (entry point `orchestrator.cli:main`): dispatch.py decides whether a
command line is ours or the real NemoClaw CLI's (which it execs, before click is imported);
root.py is the root group and one command per workflow file, one module per management group
(backups, gateway, runs, workflows; cli/groups.py lists them and imports each only when used),
echo.py the one way a command says a problem and stops."""


def main() -> None:
    import gc

    # Start-up allocates many objects that live for the whole process (modules, classes, the
    # workflow spec) and no garbage: no collection until the command is resolved, then those
    # objects are frozen out of every later collection (root.py `_started`; bench/README.md).
    gc.disable()
    from .dispatch import main as run

    run()


__all__ = ["main"]
