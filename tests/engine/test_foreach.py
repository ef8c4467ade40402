"""A foreach state runs its child workflow once per item; one failed item does not stop the others."""


def test_foreach_runs_child_per_item_and_reports_partial(engine):
    r = engine.run("t-each")
    assert r.returncode == 0, r.stderr
    assert [l for l in r.stdout.splitlines() if "worked on" in l] == ["  worked on one", "  worked on two", "  worked on three"]
    r = engine.run("t-each", env={"FAIL_ITEM": "two"})
    assert r.returncode == 1
    assert "item two failed" in r.stderr
    assert "worked on three" in r.stdout  # one failed item does not stop the others
    end = engine.events("t-each")
    finished = [e for e in end if e["event"] == "item_finished"]
    assert [(e["item"], e["exit_code"]) for e in finished] == [("one", 0), ("two", 1), ("three", 0)]
    assert end[-1]["terminal"] == "some_failed"
