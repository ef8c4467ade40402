"""The built-in step library; importing a module registers its steps."""

from . import backup, control, preflight, rebuild, registry, sandbox_list, upgrade  # noqa: F401
