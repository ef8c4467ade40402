"""`nemoclaw backups restore|prune|push|pull` take the writer lock: a lock path that is not a regular file
is one clear sentence and exit 1, as it is for a workflow run, never a traceback."""

import pytest

from tests.support.cli import invoke


@pytest.mark.parametrize("command", [("prune", "--keep", "1"), ("push",)])
@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_store_command_with_an_unusable_lock_path_is_one_sentence(home, kind, command):
    nemoclaw = home / ".nemoclaw"
    nemoclaw.mkdir()
    lock = nemoclaw / "orchestrator.lock"
    if kind == "directory":
        lock.mkdir()
    else:
        lock.symlink_to(home / "elsewhere")
    r = invoke("backups", *command, env={"HOME": str(home), "NEMOCLAW_BACKUP_REPOSITORY": str(home / "repo"),
                                         "RESTIC_PASSWORD": "not-used"})
    assert r.returncode == 1
    assert str(lock) in r.stderr and "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1
    assert lock.is_symlink() if kind == "symlink" else lock.is_dir()
