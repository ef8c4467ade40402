"""The OpenShell version model: parsing every form upstream prints, exact comparison, release lines."""

from __future__ import annotations

import pytest

from orchestrator.adapters.openshell.version import (
    OpenShellVersion,
    cross_line,
    cross_line_message,
    parse_openshell_version,
    same_release,
    version_text,
)


@pytest.mark.parametrize(
    ("text", "expected", "line"),
    [
        ("openshell 0.0.116\n", OpenShellVersion(0, 0, 116), "0.0.x"),
        ("openshell-gateway 0.0.44", OpenShellVersion(0, 0, 44), "0.0.x"),
        ("0.1.0-pre.3", OpenShellVersion(0, 1, 0, pre="pre.3"), "0.1.x"),
        ("openshell 0.0.112-dev.5+g1a2b3c4", OpenShellVersion(0, 0, 112, pre="dev.5", build="g1a2b3c4"), "0.0.x"),
        ("v0.1.10", OpenShellVersion(0, 1, 10), "0.1.x"),
        ("\x1b[2mVersion:\x1b[0m 0.1.5", OpenShellVersion(0, 1, 5), "0.1.x"),
    ],
)
def test_parses_every_form(text, expected, line):
    v = parse_openshell_version(text)
    assert v == expected and v.line == line


def test_text_is_canonical_and_unknown_is_none():
    assert version_text("openshell 0.0.112-dev.5+g1a2b3c4") == "0.0.112-dev.5+g1a2b3c4"
    assert version_text("openshell-gateway 0.1.0-pre.3\n") == "0.1.0-pre.3"
    assert version_text("Connected") is None and parse_openshell_version(None) is None


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("0.0.116", "0.0.116", True),
        ("openshell 0.0.116", "openshell-gateway 0.0.116", True),
        ("0.0.115", "0.0.116", False),
        ("0.0.112", "0.0.112-dev.5+g1a2b3c4", False),
        ("0.0.112-dev.5+g1a2b3c4", "0.0.112-dev.6+g9f9f9f9", False),
        ("0.1.0-pre.3", "0.1.0", False),
        ("0.1.5", None, None),
    ],
)
def test_any_difference_is_another_release(a, b, same):
    assert same_release(a, b) is same


def test_release_lines():
    assert cross_line("0.0.116", "0.1.5") and cross_line("0.1.0-pre.3", "0.0.112-dev.5+g1a2b3c4")
    assert not cross_line("0.0.44", "0.0.116") and not cross_line("0.1.0", "0.1.5")
    assert not cross_line("0.0.116", None)


def test_cross_line_message_names_both_lines_and_the_way_forward():
    msg = cross_line_message("0.0.116", "0.1.5")
    assert msg == (
        "  Installed OpenShell (0.0.x) and the running gateway (0.1.x) are on different release lines: such a gateway"
        " cannot serve these sandboxes; back up 0.0.x sandboxes and recreate them on the 0.1.x line."
    )
    assert cross_line_message("0.1.5", "0.0.116").startswith("  Installed OpenShell (0.1.x) and the running gateway (0.0.x)")
    assert cross_line_message("0.1.5", "0.0.116").endswith("back up 0.0.x sandboxes and recreate them on the 0.1.x line.")
