"""The whole-home scope in process: manifest fields, agent definitions, excluded entries in
the archive reader, and the shell script that empties a home except the excluded paths (run by
a real /bin/sh on a real directory tree)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from orchestrator.adapters.agents.definitions import load_agent, load_agent_file
from orchestrator.store import ManifestError, extract_stream
from orchestrator.store.home_scope import _clear_script, excluded, home_restore_names
from orchestrator.store.manifest import manifest_from_dict, manifest_to_dict
from orchestrator.store.records import DirRecord, FileRecord, LinkRecord

from tests.store.test_store_manifest import _manifest


def test_scope_and_excludes_round_trip_and_old_manifests_are_agent_scope():
    m = _manifest(scope="home", excludes=[".nemoclaw/config.json"], dir="/sandbox", state_dirs=[], state_files=[],
                  backed_up_dirs=[".openclaw"])
    doc = manifest_to_dict(m)
    assert doc["scope"] == "home" and doc["excludes"] == [".nemoclaw/config.json"]
    assert manifest_from_dict(json.loads(json.dumps(doc))) == m
    old = manifest_to_dict(_manifest())
    del old["scope"]
    assert manifest_from_dict(old).scope == "agent"


@pytest.mark.parametrize("change, why", [
    ({"scope": "everything"}, "unknown scope 'everything'"),
    ({"excludes": ["../etc/passwd"]}, "invalid excluded path '../etc/passwd'"),
    ({"excludes": ["/abs"]}, "invalid excluded path '/abs'"),
])
def test_bad_scope_fields_are_refused(change, why):
    doc = {**manifest_to_dict(_manifest()), **change}
    with pytest.raises(ManifestError, match=why.replace("(", r"\(")):
        manifest_from_dict(doc)


def test_shipped_agents_declare_the_home_and_upstreams_excludes():
    oc, hermes = load_agent("openclaw"), load_agent("hermes")
    assert oc.home_dir == hermes.home_dir == "/sandbox"
    assert {".nemoclaw/config.json", ".nemoclaw/blueprints"} <= set(oc.home_excludes) & set(hermes.home_excludes)
    assert {".hermes/gateway.pid", ".hermes/runtime/gateway.pid", ".hermes/runtime/gateway.lock"} <= set(hermes.home_excludes)


@pytest.mark.parametrize("bad", ["../x", "a/*.pid", "/abs"])
def test_an_unsafe_exclude_in_an_agent_definition_is_refused(tmp_path, bad):
    f = tmp_path / "x.yaml"
    f.write_text(f"name: x\ndir: /sandbox/.x\nstate_dirs: [a]\nhome: /sandbox\nhome_excludes: ['{bad}']\n")
    with pytest.raises(ManifestError, match="home_excludes entry"):
        load_agent_file(f)


def _tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_excluded_entries_are_neither_written_nor_recorded(tmp_path):
    data = _tar([(".", None), ("./.nemoclaw", None), ("./.nemoclaw/config.json", b"install"),
                 ("./.nemoclaw/blueprints", None), ("./.nemoclaw/blueprints/a.yaml", b"bp"),
                 ("./.nemoclaw/state.json", b"keep"), ("./user-data", None), ("./user-data/f", b"f")])
    dest = tmp_path / "d"
    dest.mkdir()
    res = extract_stream([data], dest, skip=excluded([".nemoclaw/config.json", ".nemoclaw/blueprints"]))
    assert sorted(f.path for f in res.files) == [".nemoclaw/state.json", "user-data/f"]
    assert not (dest / ".nemoclaw" / "config.json").exists() and not (dest / ".nemoclaw" / "blueprints").exists()
    assert (dest / "user-data" / "f").read_bytes() == b"f"


def test_clear_script_empties_the_home_except_excluded_paths_and_never_follows_a_symlink(tmp_path):
    home, outside = tmp_path / "sandbox", tmp_path / "outside"
    for d in (home / ".nemoclaw" / "blueprints", home / ".hermes" / "runtime", home / "user-data", outside):
        d.mkdir(parents=True)
    for f in (".nemoclaw/config.json", ".nemoclaw/blueprints/x", ".nemoclaw/other", ".hermes/gateway.pid",
              ".hermes/runtime/gateway.lock", ".hermes/runtime/cache", ".hermes/SOUL.md", "user-data/f", ".dot", "..dd"):
        (home / f).write_text(f)
    (outside / "precious").write_text("p")
    (home / "link-out").symlink_to(outside)
    os.rename(home / ".hermes" / "runtime", tmp_path / "runtime-real")
    (home / ".hermes" / "runtime").symlink_to(tmp_path / "runtime-real")  # an ancestor of kept paths, as a link
    excludes = [".nemoclaw/config.json", ".nemoclaw/blueprints", ".hermes/gateway.pid", ".hermes/runtime/gateway.lock"]
    subprocess.run(["/bin/sh", "-c", _clear_script(str(home), excludes)], check=True)
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert left == [".hermes", ".hermes/gateway.pid", ".nemoclaw", ".nemoclaw/blueprints", ".nemoclaw/blueprints/x",
                    ".nemoclaw/config.json"]
    assert (outside / "precious").read_text() == "p"  # nothing behind a symlink was touched
    assert sorted(p.name for p in (tmp_path / "runtime-real").iterdir()) == ["cache", "gateway.lock"]


def test_home_restore_names_are_the_top_level_entries():
    m = _manifest(files=[FileRecord(".openclaw/a/b", 1, "0" * 64, 0o644), FileRecord("top.txt", 1, "0" * 64, 0o644)],
                  dirs=[DirRecord("user-data", 0o755)], symlinks=[LinkRecord("ln", "top.txt")])
    assert home_restore_names(m) == [".openclaw", "ln", "top.txt", "user-data"]


def _home_manifest(**change):
    oc = load_agent("openclaw")
    base = dict(scope="home", excludes=list(oc.home_excludes), dir="/sandbox", state_dirs=[], state_files=[],
                backed_up_dirs=[".openclaw"], files=[], dirs=[DirRecord(".openclaw", 0o755)], symlinks=[])
    return _manifest(**{**base, **change})


def test_a_whole_home_manifest_is_checked_against_the_agents_home_and_excludes():
    from orchestrator.store.manifest import check_against_agent

    oc = load_agent("openclaw")
    check_against_agent(_home_manifest(), oc)  # what a capture writes passes
    check_against_agent(_home_manifest(excludes=[]), oc)  # excluding less than declared is allowed
    cases = [
        (_home_manifest(dir="/sandbox/.openclaw"), "is not the openclaw agent's home '/sandbox'"),
        (_home_manifest(excludes=[*oc.home_excludes, ".openclaw"]),
         "excludes '.openclaw', which the openclaw agent does not declare"),
        (_home_manifest(files=[FileRecord(".nemoclaw/config.json", 1, "0" * 64, 0o600)]),
         "'.nemoclaw/config.json' lies under the excluded path"),
        (_home_manifest(state_dirs=["workspace"], backed_up_dirs=[]), "lists no stateDirs or stateFiles"),
        (_home_manifest(backed_up_dirs=[".ghost"]), "backedUpDirs entry '.ghost' has no directory record"),
    ]
    for m, why in cases:
        with pytest.raises(ManifestError, match=why.replace("(", r"\(")):
            check_against_agent(m, oc)
    # An agent-scope manifest may not carry excludes (they would hide target files from a restore).
    with pytest.raises(ManifestError, match="excludes is only valid in a whole-home"):
        check_against_agent(_manifest(excludes=[".nemoclaw/config.json"]), oc)


def test_a_home_holding_only_top_level_files_is_not_an_empty_backup():
    """A whole-home capture lists only top-level *directories* as backed-up dirs; a home whose
    content is files alone still holds something and must not get the empty-backup warning."""
    from orchestrator.store.archive import ArchiveResult
    from orchestrator.store.capture import Capture

    assert Capture(state_dirs=[]).empty
    only_files = Capture(state_dirs=[], archive=ArchiveResult(files=[FileRecord("notes.txt", 1, "0" * 64, 0o644)]))
    assert not only_files.empty
    only_link = Capture(state_dirs=[], archive=ArchiveResult(symlinks=[LinkRecord("ln", "notes.txt")]))
    assert not only_link.empty
