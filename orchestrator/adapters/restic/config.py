"""Where the off-host copies go, from the environment, and how a repository is named in text.

`NEMOCLAW_BACKUP_REPOSITORY` is a restic repository string (a path, `rest:…`, `s3:…`,
`sftp:…`). The password is never ours to hold: restic reads it from its own environment
(`RESTIC_PASSWORD_FILE`, `RESTIC_PASSWORD_COMMAND` or `RESTIC_PASSWORD`), which we pass through
untouched; we only read it to know what to redact. The repository string itself goes to restic
through `RESTIC_REPOSITORY` (it may hold a REST server's `user:password@`), never through argv.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping

import attrs

REPOSITORY_ENV = "NEMOCLAW_BACKUP_REPOSITORY"
HOST_ENV = "NEMOCLAW_BACKUP_HOST"
PASSWORD_ENVS = ("RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND", "RESTIC_PASSWORD")
#: What restic's environment may carry that must never be shown (their values are redacted).
_SECRET_ENVS = ("RESTIC_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AZURE_ACCOUNT_KEY", "B2_ACCOUNT_KEY",
                "GOOGLE_ACCESS_TOKEN", "OS_PASSWORD", "RESTIC_REST_PASSWORD")
_USERINFO = re.compile(r"(?P<head>://[^/@\s:]*:)(?P<secret>[^@/\s]+)@")
REDACTED = "***"


def redact_location(location: str) -> str:
    """`rest:https://bob:s3cr3t@host/` -> `rest:https://bob:***@host/` (restic's own form)."""
    return _USERINFO.sub(lambda m: f"{m['head']}{REDACTED}@", location)


@attrs.frozen
class Repository:
    """One configured repository: its location and what its environment makes secret."""

    location: str
    host: str
    env: Mapping[str, str] = attrs.field(repr=False)
    secrets: tuple[str, ...] = attrs.field(repr=False, default=())

    @property
    def shown(self) -> str:
        """The location as every message names it: any password in it redacted."""
        return self.redact(self.location)

    @property
    def has_password(self) -> bool:
        return any(self.env.get(k) for k in PASSWORD_ENVS)

    def redact(self, text: str) -> str:
        text = redact_location(text)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text


def configured(env: Mapping[str, str] | None = None) -> Repository | None:
    """The repository `NEMOCLAW_BACKUP_REPOSITORY` names, or None when unset (no off-host copies)."""
    env = dict(os.environ if env is None else env)
    location = env.get(REPOSITORY_ENV, "").strip()
    if not location:
        return None
    return repository(location, env)


def repository(location: str, env: Mapping[str, str] | None = None) -> Repository:
    env = dict(os.environ if env is None else env)
    host = env.get(HOST_ENV, "").strip() or socket.gethostname()
    return Repository(location=location, host=host, env=env, secrets=_secrets(location, env))


def _secrets(location: str, env: Mapping[str, str]) -> tuple[str, ...]:
    found = [env[k] for k in _SECRET_ENVS if env.get(k)]
    m = _USERINFO.search(location)
    if m:
        found.append(m["secret"])
    path = env.get("RESTIC_PASSWORD_FILE")
    if path:
        try:
            with open(path, "rb") as fh:
                first = fh.read(4096).decode("utf-8", "replace").splitlines()
        except OSError:
            first = []
        if first and first[0]:
            found.append(first[0])
    # Too short a "secret" would redact ordinary words; restic refuses empty passwords anyway.
    return tuple(s for s in dict.fromkeys(found) if len(s) >= 3)
