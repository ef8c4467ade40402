"""The password given through each of restic's own variables (RESTIC_PASSWORD,
RESTIC_PASSWORD_COMMAND; RESTIC_PASSWORD_FILE is test_push_pull's) never appears in an argv
(the wrapped restic records each), in any output, or in any file we write (store, journals,
caches); neither does a wrong one. A real restic, a REST server on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import invoke

from .helpers import TS1, files_of, make_backup


def _files_hold(base: Path, secret: str) -> list[Path]:
    return [Path(d) / n for d, _, names in os.walk(base) for n in names
            if secret.encode() in (Path(d) / n).read_bytes()]


@pytest.mark.parametrize("how", ["RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND"])
def test_a_password_from_the_environment_or_a_command_is_never_shown_or_written(how, rest_repo, tmp_path):
    secret = rest_repo.password
    given = {"RESTIC_PASSWORD_FILE": None, how: secret if how == "RESTIC_PASSWORD" else f"cat {rest_repo.root}/password"}
    make_backup(rest_repo.home, "alpha", TS1, files_of("env-secret"))
    other = tmp_path / "other-home"
    outs = [invoke(*args, env=rest_repo.env(**given, **extra)) for args, extra in (
        (("backups", "init-remote"), {}), (("backups", "push"), {}), (("backups", "push"), {}),
        (("backups", "list", "--remote", "--json"), {}), (("backups", "pull", "alpha"), {"HOME": str(other)}),
        (("backups", "verify", "--remote"), {}), (("backups", "prune", "--remote", "--keep", "1", "--dry-run"), {}))]
    assert [o.returncode for o in outs] == [0] * len(outs), outs
    wrong = "wrong-" + secret[::-1]
    refused = invoke("backups", "push", env=rest_repo.env(**{**given, "RESTIC_PASSWORD_FILE": None,
                                                              "RESTIC_PASSWORD_COMMAND": None, "RESTIC_PASSWORD": wrong}))
    assert refused.returncode == 1 and "The password does not open the backup repository" in refused.stderr
    for text in [o.stdout + o.stderr for o in outs + [refused]]:
        assert secret not in text and wrong not in text
    argvs = rest_repo.argvs()
    assert len(argvs) >= 8 and not any(secret in a or wrong in a for a in argvs)
    assert (other / ".nemoclaw" / "rebuild-backups" / "alpha" / TS1).is_dir()
    for base in (rest_repo.home, other):
        assert _files_hold(base, secret) == [] and _files_hold(base, wrong) == []
