"""The management command groups of `nemoclaw`, one module each, imported only when used (so
`nemoclaw --help` and a workflow run do not load the others). The one-line help here is the
group's help text."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # not imported at run time: cli/dispatch.py reads GROUPS before click is loaded
    import click


class Group(NamedTuple):
    module: str
    attr: str
    help: str


GROUPS = {
    "backups": Group("backups", "backups_group",
                     "Inspect, verify, restore and prune committed backups (~/.nemoclaw/rebuild-backups/)."),
    "gateway": Group("gateway", "gateway_group", "Inspect the NemoClaw OpenShell gateway."),
    "runs": Group("runs", "runs_group", "Past runs, their journals, and finishing or giving up interrupted ones."),
    "workflows": Group("workflows", "workflows_group", "List, inspect, validate and draw workflow files."),
}


def load_group(name: str) -> click.Group:
    g = GROUPS[name]
    return getattr(importlib.import_module(f".{g.module}", __package__), g.attr)
