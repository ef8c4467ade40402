"""`nemoclaw backups init-remote|push|pull|list --remote` against a real restic, with a local
repository and a REST server on 127.0.0.1 (docs/backups.md, "Off-host copies")."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.cli import invoke
from tests.support.restic_repo import make_setup, restic

from .helpers import TS1, TS2, backup_dirs, du, files_of, make_backup, tree


def nemoclaw(setup, *args, **env):
    return invoke(*args, env=setup.env(**env))


def backups_root(home: Path) -> Path:
    return home / ".nemoclaw" / "rebuild-backups"


def test_push_then_pull_on_a_new_host_is_byte_identical(any_repo, tmp_path):
    a1 = make_backup(any_repo.home, "alpha", TS1, files_of("a1"))
    a2 = make_backup(any_repo.home, "alpha", TS2, files_of("a2"))
    make_backup(any_repo.home, "beta", TS1, files_of("b1"))
    assert nemoclaw(any_repo, "backups", "init-remote").returncode == 0
    pushed = nemoclaw(any_repo, "backups", "push")
    assert pushed.returncode == 0, pushed.stderr
    assert "Pushed 3, skipped 0 already there, failed 0." in pushed.stdout
    again = nemoclaw(any_repo, "backups", "push", "alpha")
    assert again.returncode == 0 and "Pushed 0, skipped 2 already there, failed 0." in again.stdout

    # A new host (another HOME, another host name) recovers from the repository alone.
    other = tmp_path / "new-host"
    env = {"HOME": str(other), "NEMOCLAW_BACKUP_HOST": "host-b"}
    listed = nemoclaw(any_repo, "backups", "list", "--remote", "--json", **env)
    rows = json.loads(listed.stdout)["backups"]
    assert [(r["sandbox"], r["timestamp"], r["host"], r["local"]) for r in rows] == [
        ("alpha", TS2, "host-a", False), ("beta", TS1, "host-a", False), ("alpha", TS1, "host-a", False)]
    assert rows[0]["bytes"] == sum(len(v) for v in files_of("a2").values())
    pulled = nemoclaw(any_repo, "backups", "pull", "alpha", **env)
    assert pulled.returncode == 0, pulled.stderr
    assert f"✓ Pulled 'alpha' {TS2}: 7 files match its manifest" in pulled.stdout
    assert tree(backups_root(other) / "alpha" / TS2) == tree(a2)
    assert nemoclaw(any_repo, "backups", "pull", "alpha", TS1, **env).returncode == 0
    assert tree(backups_root(other) / "alpha" / TS1) == tree(a1)
    # The store takes them as its own: valid, verified, the newest is the one restore would use.
    verified = invoke("backups", "verify", "alpha", "--all", env={"HOME": str(other)})
    assert verified.returncode == 0 and verified.stdout.count("files match the manifest") == 2
    assert json.loads(nemoclaw(any_repo, "backups", "list", "--remote", "--json", **env).stdout)["backups"][0]["local"]
    # Pulling it again changes nothing.
    again = nemoclaw(any_repo, "backups", "pull", "alpha", TS2, **env)
    assert again.returncode == 0 and "already in the local store; nothing pulled" in again.stdout
    assert list((backups_root(other) / ".staging").iterdir()) == []


def test_an_unchanged_backup_adds_at_most_one_percent(local_repo):
    files = files_of("same", n=8, size=512 * 1024)  # 4 MiB
    size = sum(len(v) for v in files.values())
    make_backup(local_repo.home, "alpha", TS1, files)
    nemoclaw(local_repo, "backups", "init-remote")
    assert nemoclaw(local_repo, "backups", "push").returncode == 0
    repo = Path(local_repo.location)
    first = du(repo)
    assert first > size  # it is all there once
    assert nemoclaw(local_repo, "backups", "push").returncode == 0  # skipped by digest
    assert du(repo) == first
    # The next backup of an unchanged sandbox: new timestamp, new manifest, the same files.
    make_backup(local_repo.home, "alpha", TS2, files)
    out = nemoclaw(local_repo, "backups", "push")
    assert out.returncode == 0 and "Pushed 1, skipped 1" in out.stdout
    assert du(repo) - first <= size // 100, (du(repo) - first, size)


def test_a_flipped_byte_in_a_pack_fails_the_pull_with_nothing_committed(local_repo, tmp_path):
    make_backup(local_repo.home, "alpha", TS1, files_of("flip", n=4, size=256 * 1024))
    nemoclaw(local_repo, "backups", "init-remote")
    assert nemoclaw(local_repo, "backups", "push").returncode == 0
    packs = sorted((Path(local_repo.location) / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    pack = packs[-1]
    os.chmod(pack, 0o600)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    other = tmp_path / "new-host"
    pulled = nemoclaw(local_repo, "backups", "pull", "alpha", HOME=str(other))
    assert pulled.returncode == 1
    assert "damaged" in pulled.stderr and local_repo.location in pulled.stderr, pulled.stderr
    assert backup_dirs(other, "alpha") == []
    assert list((backups_root(other) / ".staging").iterdir()) == []


def test_wrong_password_and_stopped_server_change_nothing_local(rest_repo, rest_server, tmp_path):
    make_backup(rest_repo.home, "alpha", TS1, files_of("pw"))
    before = tree(backups_root(rest_repo.home))
    nemoclaw(rest_repo, "backups", "init-remote")
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-password\n")
    for args in (["push"], ["pull", "alpha"], ["list", "--remote"], ["verify", "--remote"], ["prune", "--remote", "--keep", "1"]):
        out = nemoclaw(rest_repo, "backups", *args, RESTIC_PASSWORD_FILE=str(wrong))
        assert out.returncode == 1, (args, out)
        assert out.stderr == (f"  The password does not open the backup repository {rest_server.url}: set "
                              "RESTIC_PASSWORD_FILE (or RESTIC_PASSWORD_COMMAND, RESTIC_PASSWORD) to its password.\n")
    rest_server.stop()
    for args in (["push"], ["pull", "alpha"], ["list", "--remote"]):
        out = nemoclaw(rest_repo, "backups", *args)
        assert out.returncode == 1
        assert out.stderr == (f"  The backup repository {rest_server.url} cannot be reached (connection refused): "
                              "check that its server is up and NEMOCLAW_BACKUP_REPOSITORY is right, then rerun.\n")
    missing = nemoclaw(rest_repo, "backups", "push", NEMOCLAW_BACKUP_REPOSITORY=str(tmp_path / "no-repo"))
    assert missing.returncode == 1 and "There is no restic repository at" in missing.stderr
    unset = nemoclaw(rest_repo, "backups", "push", NEMOCLAW_BACKUP_REPOSITORY="")
    assert unset.returncode == 1 and "NEMOCLAW_BACKUP_REPOSITORY is not set" in unset.stderr
    after = tree(backups_root(rest_repo.home))
    after.pop(".staging", None)
    before.pop(".staging", None)
    assert after == before


def test_the_password_appears_in_no_argv_output_or_file(any_repo, tmp_path):
    make_backup(any_repo.home, "alpha", TS1, files_of("secret"))
    outs = [nemoclaw(any_repo, "backups", "init-remote"), nemoclaw(any_repo, "backups", "push"),
            nemoclaw(any_repo, "backups", "list", "--remote", "--json"),
            nemoclaw(any_repo, "backups", "pull", "alpha", HOME=str(tmp_path / "h2")),
            nemoclaw(any_repo, "backups", "verify", "--remote")]
    assert all(o.returncode == 0 for o in outs), outs
    secret = any_repo.password
    assert len(any_repo.argvs()) >= 5 and not any(secret in a for a in any_repo.argvs())
    assert not any(secret in o.stdout or secret in o.stderr for o in outs)
    for base in (any_repo.home, tmp_path / "h2"):
        for dirpath, _, names in os.walk(base):
            for name in names:
                assert secret.encode() not in (Path(dirpath) / name).read_bytes(), Path(dirpath) / name


def test_prune_remote_keeps_n_of_this_host_and_verify_remote_reads_data(local_repo):
    for ts, seed in ((TS1, "p1"), (TS2, "p2")):
        make_backup(local_repo.home, "alpha", ts, files_of(seed))
    nemoclaw(local_repo, "backups", "init-remote")
    nemoclaw(local_repo, "backups", "push")
    # Another host's backups of a sandbox of the same name are never pruned by this host.
    for ts, seed in ((TS1, "q1"), (TS2, "q2")):
        make_backup(local_repo.root / "other-home", "alpha", ts, files_of(seed))
    nemoclaw(local_repo, "backups", "push", HOME=str(local_repo.root / "other-home"), NEMOCLAW_BACKUP_HOST="host-b")
    dry = nemoclaw(local_repo, "backups", "prune", "--remote", "--keep", "1", "--dry-run")
    assert dry.returncode == 0 and f"Would remove alpha {TS1}" in dry.stdout
    assert len(json.loads(nemoclaw(local_repo, "backups", "list", "--remote", "--json").stdout)["backups"]) == 4
    done = nemoclaw(local_repo, "backups", "prune", "--remote", "--keep", "1")
    assert done.returncode == 0 and f"Removed alpha {TS1}" in done.stdout
    rows = json.loads(nemoclaw(local_repo, "backups", "list", "--remote", "--json").stdout)["backups"]
    assert sorted((r["host"], r["timestamp"]) for r in rows) == [("host-a", TS2), ("host-b", TS1), ("host-b", TS2)]
    assert backup_dirs(local_repo.home, "alpha") == [TS1, TS2]  # local backups untouched
    checked = nemoclaw(local_repo, "backups", "verify", "--remote", "--read-data-subset", "100%")
    assert checked.returncode == 0 and "found no errors" in checked.stdout
    assert restic(local_repo, "check").returncode == 0
    refused = nemoclaw(local_repo, "backups", "prune", "--remote", "--keep", "0")
    assert refused.returncode == 2
