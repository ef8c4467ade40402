"""The built-in step library: importing it declares the built-in facts (facts.py) and every
step's signature (library.py); a step's module is imported when a run first needs that step."""

from . import facts  # noqa: F401  (declares the built-in facts first)
from . import replicate_facts  # noqa: F401  (the off-host copy steps' facts)
from . import store_facts  # noqa: F401  (the store steps' facts)
from . import migrate_facts  # noqa: F401  (migrate-openshell's facts)
from . import library  # noqa: F401
