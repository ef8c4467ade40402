"""The restic adapter against a real restic: the clear errors, and the password kept out of
every argv and message (docs/reference/restic.md)."""

from __future__ import annotations

import os

import pytest

from orchestrator.adapters.restic import (
    NoPassword,
    RepositoryExists,
    RepositoryMissing,
    RepositoryUnreachable,
    Restic,
    ResticNotFound,
    WrongPassword,
    redact_location,
    repository,
)


def client(setup, **env) -> Restic:
    return Restic(repository(setup.location, {**os.environ, **setup.env(), **env}))


def test_init_then_snapshots_and_a_second_init_says_it_exists(any_repo):
    c = client(any_repo)
    c.init()
    assert c.snapshots() == []
    with pytest.raises(RepositoryExists, match="already exists"):
        c.init()


def test_missing_repository_is_one_sentence_naming_it(local_repo):
    with pytest.raises(RepositoryMissing) as err:
        client(local_repo).snapshots()
    assert str(err.value) == (f"There is no restic repository at {local_repo.location}: create it with "
                              "`nemoclaw backups init-remote`, or set NEMOCLAW_BACKUP_REPOSITORY to the right one.")


def test_missing_repository_on_a_rest_server(rest_server, tmp_path):
    from tests.support.restic_repo import make_setup

    setup = make_setup(tmp_path, location=rest_server.url + "nothing-here/")
    with pytest.raises(RepositoryMissing, match="no restic repository at rest:http://127.0.0.1"):
        client(setup).snapshots()


def test_wrong_password(any_repo, tmp_path):
    client(any_repo).init()
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    with pytest.raises(WrongPassword) as err:
        client(any_repo, RESTIC_PASSWORD_FILE=str(wrong)).snapshots()
    assert any_repo.location in str(err.value) or "127.0.0.1" in str(err.value)
    assert "not-the-password" not in str(err.value) and "not-the-password" not in (err.value.detail or "")


def test_stopped_server_is_unreachable_not_missing(rest_repo, rest_server):
    client(rest_repo).init()
    rest_server.stop()
    with pytest.raises(RepositoryUnreachable) as err:
        client(rest_repo).snapshots()
    assert str(err.value) == (f"The backup repository {rest_server.url} cannot be reached (connection refused): check "
                              "that its server is up and NEMOCLAW_BACKUP_REPOSITORY is right, then rerun.")


def test_a_password_in_the_location_is_redacted_everywhere(rest_server, tmp_path):
    from tests.support.restic_repo import make_setup

    location = rest_server.url.replace("http://", "http://bob:hunter2-in-url@")
    setup = make_setup(tmp_path, location=location)
    rest_server.stop()
    with pytest.raises(RepositoryUnreachable) as err:
        client(setup).snapshots()
    assert "hunter2-in-url" not in str(err.value) and "bob:***@" in str(err.value)
    assert not any("hunter2-in-url" in a for a in setup.argvs())  # the location went by environment
    assert redact_location("rest:https://u:p%40ss@h:8000/x") == "rest:https://u:***@h:8000/x"
    assert redact_location("sftp:user@host:/srv/restic") == "sftp:user@host:/srv/restic"


def test_no_password_configured_refuses_before_running_restic(local_repo):
    env = {k: v for k, v in {**os.environ, **local_repo.env()}.items() if not k.startswith("RESTIC_PASSWORD")}
    with pytest.raises(NoPassword, match="No password is set for the backup repository"):
        Restic(repository(local_repo.location, env)).snapshots()
    assert local_repo.argvs() == []


def test_restic_not_on_path(local_repo, tmp_path):
    with pytest.raises(ResticNotFound, match=r"restic is not installed .*apt-get install restic"):
        client(local_repo, PATH=str(tmp_path / "empty")).snapshots()


def test_the_password_is_never_in_an_argv(any_repo, tmp_path):
    c = client(any_repo)
    c.init()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("data")
    c.backup(src, tags=["nemoclaw"], time="2026-05-01 00:00:00")
    c.snapshots()
    argvs = any_repo.argvs()
    assert len(argvs) >= 3 and all("--json" in a for a in argvs)
    assert not any(any_repo.password in a for a in argvs)
