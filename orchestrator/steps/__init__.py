"""The built-in step library; importing a module registers its steps."""

from . import backup, preflight, registry, sandbox_list  # noqa: F401
