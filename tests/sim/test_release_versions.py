"""Which releases the stand-in's reinstall accepts (versions.known_0_1_release), in process."""

from __future__ import annotations

import pytest

from nemoclaw_sim.versions import Version, known_0_1_release


@pytest.mark.parametrize("text, known", [
    ("0.1.0", True), ("0.1.5", True), ("0.1.11", True), ("0.1.0-pre.3", True), ("0.1.5-dev.3+gabc1234", True),
    ("0.1.12", False), ("0.2.0", False), ("1.1.0", False), ("0.0.116", False),
])
def test_known_0_1_releases(text, known):
    assert known_0_1_release(Version(text)) is known
