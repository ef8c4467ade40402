"""backup-all's default --parallel comes from the machine (store/parallelism.py)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.store.parallelism import default_parallel, is_rotational


def test_four_captures_per_core_between_two_and_eight(tmp_path):
    assert [default_parallel(tmp_path, cores=n, rotational=False) for n in (1, 2, 3, 16)] == [4, 8, 8, 8]


def test_a_spinning_disk_gets_two(tmp_path):
    assert default_parallel(tmp_path, cores=16, rotational=True) == 2


def test_the_disk_of_a_path_not_yet_made_is_its_nearest_existing_parent(tmp_path):
    assert is_rotational(tmp_path / "not" / "yet") == is_rotational(tmp_path)
    assert is_rotational(Path("/proc")) is None  # no block device behind it
