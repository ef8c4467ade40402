"""`upgrade-sandboxes --check` beside a running backup (issue: it stalled while the archive was read).

Docker holds a container's lock while its archive is streamed, so an inspect or exec of a
sandbox a live backup is reading waits for the whole read. A read-only run therefore never asks
Docker about a sandbox that a live run froze (its pause record names it): here there is no
Docker engine at all, so any Docker call would fail with "Cannot reach the Docker engine".
The end-to-end case, against the stand-in on the real engine, is in tests/e2e/test_deadlines_e2e.py.
"""

from __future__ import annotations

import os

import attrs
import pytest

from orchestrator.kernel.errors import StepError
from orchestrator.kernel.owner import Owner
from orchestrator.steps._openshell_common import listed_container
from orchestrator.steps._pause_records import paused_dir
from orchestrator.steps.facts import SandboxList
from orchestrator.kernel import atomic
from orchestrator.store import fsops

from tests.support.steputil import make_ctx


@pytest.fixture(autouse=True)
def no_engine(home, monkeypatch):
    """No Docker client made by an earlier test in this process: a Docker call here must fail."""
    import orchestrator.adapters.sandbox_containers as containers

    monkeypatch.setattr(containers, "_client", None)


def _ctx(read_only: bool):
    ctx = attrs.evolve(make_ctx(), read_only=read_only)
    ctx.facts["sandbox_list"] = SandboxList(live=["alpha"], ready=["alpha"], phases={"alpha": "Ready"},
                                            ids={"alpha": "id-alpha"}, format="json")
    return ctx


def _record_freeze(ctx, owner: Owner) -> None:
    d = paused_dir(ctx)
    fsops.makedirs_private(d)
    doc = {"sandbox": "alpha", "container": "openshell-alpha-id", "owner": owner.to_json()}
    atomic.write_file_atomic(d / "c0ffee.json", atomic.dump_json(doc))


def test_check_never_asks_docker_about_a_sandbox_a_live_backup_froze(home):
    ctx = _ctx(read_only=True)
    _record_freeze(ctx, Owner.current("20261203T000000Z-backup"))  # alive: this very process
    with pytest.raises(StepError) as info:
        listed_container(ctx, "alpha")
    assert str(info.value) == "sandbox 'alpha' is frozen by run 20261203T000000Z-backup while it is backed up"


def test_a_dead_runs_freeze_or_a_writing_run_still_asks_docker(home):
    ctx = _ctx(read_only=True)
    dead = attrs.evolve(Owner.current("20261203T000000Z-dead"), pid=2**22 + 17, proc_start=1)
    assert not dead.is_alive()
    _record_freeze(ctx, dead)
    with pytest.raises(StepError, match="Cannot reach the Docker engine"):
        listed_container(ctx, "alpha")
    os.remove(paused_dir(ctx) / "c0ffee.json")
    _record_freeze(ctx, Owner.current("20261203T000000Z-backup"))
    with pytest.raises(StepError, match="Cannot reach the Docker engine"):  # a writer reads its own freeze
        listed_container(_ctx(read_only=False), "alpha")
