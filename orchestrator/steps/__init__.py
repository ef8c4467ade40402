"""The built-in step library; importing a module registers its steps."""

from . import facts  # noqa: F401  (declares the built-in facts first)
from . import backup, control, preflight, rebuild, registry, sandbox_list, upgrade  # noqa: F401
