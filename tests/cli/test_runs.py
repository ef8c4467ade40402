"""`nemoclaw runs list|show`: the journals of past runs, in process."""

import json

from tests.support.cli import invoke


def test_runs_list_and_show(engine):
    engine.run("t-route", allow=True)
    engine.run("t-boom")
    r = invoke("runs", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["workflow"], x["terminal"], x["exit_code"]) for x in rows] == [("t-boom", "failed", 1), ("t-route", "done", 0)]
    r = invoke("runs", "show", rows[1]["run"][:22])
    assert r.returncode == 0
    assert "state_entered" in r.stdout and 'state="work"' in r.stdout
    r = invoke("runs", "show", "nope")
    assert r.returncode == 2
    assert f"no run 'nope' in {engine.home / '.nemoclaw' / 'runs'}" in r.stderr
