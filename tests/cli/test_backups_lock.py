"""`nemoclaw backups restore|prune` take the writer lock: a lock path that is not a regular file
is one clear sentence and exit 1, as it is for a workflow run, never a traceback."""

import pytest

from tests.support.cli import invoke


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_prune_with_an_unusable_lock_path_is_one_sentence(home, kind):
    nemoclaw = home / ".nemoclaw"
    nemoclaw.mkdir()
    lock = nemoclaw / "orchestrator.lock"
    if kind == "directory":
        lock.mkdir()
    else:
        lock.symlink_to(home / "elsewhere")
    r = invoke("backups", "prune", "--keep", "1", env={"HOME": str(home)})
    assert r.returncode == 1
    assert str(lock) in r.stderr and "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1
    assert lock.is_symlink() if kind == "symlink" else lock.is_dir()
