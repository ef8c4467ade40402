"""A read-only run (`read_only_when`, e.g. --check) changes nothing: it refuses every step that
changes the world, a `commits` step and a `mutates` one alike, and a foreach child of a
read-only run is read-only too. Refused means the run ends failed (exit 1) with one line
naming the step, its state and the option, and nothing of the world changed."""


def test_a_read_only_run_refuses_a_mutating_step_and_changes_nothing(engine):
    r = engine.run("t-look-mark", check=True)
    assert r.returncode == 1, r.stderr
    assert "ok in t-look-mark" in r.stdout  # the state before it ran
    assert "  Refusing to run 't_mark' (state 'mark'): this run is read-only (--check).\n" in r.stderr
    assert not (engine.home / "marks").exists()
    assert r.result.terminal == "failed"
    assert not (engine.home / ".nemoclaw" / "runs").exists() or not list((engine.home / ".nemoclaw" / "runs").iterdir())
    written = engine.run("t-look-mark")  # the same workflow without --check changes the world
    assert written.returncode == 0, written.stderr
    assert (engine.home / "marks").read_text() == "looked\n"


def test_a_read_only_run_refuses_a_committing_step(engine):
    r = engine.run("t-look", check=True, empty=True)  # routes to the commit state
    assert r.returncode == 1
    assert "  Refusing to run 't_stage_commit' (state 'commit'): this run is read-only (--check).\n" in r.stderr
    assert not (engine.home / ".nemoclaw" / "rebuild-backups").exists()


def test_a_foreach_child_of_a_read_only_run_is_read_only(engine):
    """t-mark-item has no --check of its own: it must not mark anything under a --check parent."""
    r = engine.run("t-look-each", check=True)
    assert r.returncode == 1, r.stderr
    assert "  Refusing to run 't_mark_item' (state 'mark'): this run is read-only (--check).\n" in r.stderr
    assert not (engine.home / "marks").exists()
    written = engine.run("t-look-each")
    assert written.returncode == 0, written.stderr
    assert (engine.home / "marks").read_text() == "one\ntwo\nthree\n"
