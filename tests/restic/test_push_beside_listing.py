"""push_backup starts restic's backup beside the repository listing (steps/_replication.py):
whichever ends first, the repository ends with exactly one snapshot of the backup, against a
real restic."""

from __future__ import annotations

import json
import os
from concurrent.futures import Future

from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.adapters.restic import Restic, repository
from orchestrator.steps._replication import push_backup, remote_backups
from orchestrator.store import BackupStore
from tests.support.restic_repo import restic

from .helpers import TS1, files_of, make_backup


def _client(setup) -> Restic:
    return Restic(repository(setup.location, {**os.environ, **setup.env()}))


def _snapshots(setup) -> list[dict]:
    return json.loads(restic(setup, "snapshots", "--json").stdout or "[]")


def _backup(setup):
    make_backup(setup.home, "alpha", TS1, files_of("beside"))
    return BackupStore(setup.home / ".nemoclaw" / "rebuild-backups", load_agent).list("alpha")[0]


def test_a_listing_that_comes_after_the_backup_and_shows_it_keeps_it(local_repo):
    c = _client(local_repo)
    c.init()
    backup = _backup(local_repo)
    held: Future = Future()

    class ListedAfter(Restic):
        def backup(self, *args, **kwargs):
            summary = super().backup(*args, **kwargs)
            held.set_result(remote_backups(c))  # the listing saw the snapshot just made
            return summary

    res = push_backup(ListedAfter(c.repo), backup, held=held)
    assert not res.skipped
    snaps = _snapshots(local_repo)
    assert [s["id"] for s in snaps] == [next(s["id"] for s in snaps if s["id"].startswith(res.snapshot_id))]


def test_a_listing_that_shows_the_backup_already_there_stops_the_new_one(local_repo):
    c = _client(local_repo)
    c.init()
    backup = _backup(local_repo)
    first = push_backup(c, backup, held=[])
    held: Future = Future()

    class ListedWhileRunning(Restic):
        def backup(self, *args, on_started=None, **kwargs):
            def started(pid):
                on_started(pid)
                held.set_result(remote_backups(c))  # the older copy is there: this backup must go
            return super().backup(*args, on_started=started, **kwargs)

    again = push_backup(ListedWhileRunning(c.repo), backup, held=held)
    assert again.skipped
    assert [s["short_id"] for s in _snapshots(local_repo)] == [first.snapshot_id]
