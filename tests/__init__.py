"""The test suite is a package, so `tests/openshell` is `tests.openshell` and never shadows the
OpenShell SDK (`import openshell`) on sys.path."""
