"""The built-in step library; importing a module registers its steps."""

from . import preflight, sandbox_list  # noqa: F401
