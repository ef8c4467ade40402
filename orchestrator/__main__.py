"""`python -m orchestrator`: the `nemoclaw` command, for an environment without its script."""

from .cli import main

main()
