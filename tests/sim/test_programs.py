"""The installed `openshell` / `openshell-gateway` programs on their own: versions, offline CLI
formats, usage errors, gateway flags, and sqlx migration behaviour (docs/reference/openshell-versions.md)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from nemoclaw_sim import db
from nemoclaw_sim.install import install

from tests.support.sim_helpers import env_for, free_port, listening, pid_gone, run, strip, wait_for

pytestmark = pytest.mark.docker

MIGRATION_ERROR = (
    "Error:   × execution error: migration error: migration 5 was previously applied but\n"
    "  │ is missing in the resolved migrations\n"
)


@pytest.fixture
def host(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    return home, home / ".local" / "bin", env_for(home)


def test_versions_printed(host):
    home, bin_dir, env = host
    install(bin_dir, "0.0.44", "0.0.43")
    assert run([str(bin_dir / "openshell"), "--version"], env).stdout == "openshell 0.0.44\n"
    assert run([str(bin_dir / "openshell"), "-V"], env).stdout == "openshell 0.0.44\n"
    assert run([str(bin_dir / "openshell-gateway"), "--version"], env).stdout == "openshell-gateway 0.0.43\n"
    install(bin_dir, None, "0.0.44")  # replacing the file swaps the binary
    assert run([str(bin_dir / "openshell-gateway"), "--version"], env).stdout == "openshell-gateway 0.0.44\n"


def test_offline_cli_formats_and_errors(host):
    home, bin_dir, env = host
    install(bin_dir, "0.0.47", None)
    osh = str(bin_dir / "openshell")

    r = run([osh, "status"], env)
    assert r.returncode == 0 and "\x1b[" in r.stdout
    assert strip(r.stdout) == ("Gateway Status\n\n  Status: No gateway configured.\n\n"
                               "Register a gateway with: openshell gateway add <endpoint>\n")

    r = run([osh, "sandbox", "list"], env)
    assert r.returncode == 1
    assert r.stderr == ("Error:   × No active gateway.\n  │ Set one with: openshell gateway select <name>\n"
                        "  │ Or register one with: openshell gateway add <endpoint>\n")

    r = run([osh, "gateway", "list"], env)
    assert strip(r.stdout) == "No gateways found.\n\nRegister a gateway with: openshell gateway add <endpoint>\n"

    r = run([osh, "gateway", "add", "http://127.0.0.1:9", "--name", "nemoclaw"], env)
    assert r.returncode == 0
    assert "⚠ Gateway is not reachable at http://127.0.0.1:9" in strip(r.stderr)
    assert "✓ Gateway 'nemoclaw' added and set as active\n  Endpoint: http://127.0.0.1:9\n  Type: local\n  Auth: plaintext" in strip(r.stderr)
    meta = home / ".config" / "openshell" / "gateways" / "nemoclaw" / "metadata.json"
    assert json.loads(meta.read_text()) == {"name": "nemoclaw", "gateway_endpoint": "http://127.0.0.1:9",
                                            "is_remote": False, "gateway_port": 0, "auth_mode": "plaintext"}
    assert list(json.loads(meta.read_text())) == ["name", "gateway_endpoint", "is_remote", "gateway_port", "auth_mode"]
    assert (home / ".config" / "openshell" / "active_gateway").read_text() == "nemoclaw"

    r = run([osh, "gateway", "info"], env)
    assert r.returncode == 0 and "\x1b[" in r.stdout
    assert strip(r.stdout) == "Gateway Info\n\n  Gateway: nemoclaw\n  Gateway endpoint: http://127.0.0.1:9\n"
    r = run([osh, "gateway", "info", "-g", "ghost"], env)
    assert r.returncode == 1
    assert r.stderr == ("Error:   × No gateway metadata found for 'ghost'.\n"
                        "  │   Register it first: openshell gateway add <endpoint> --name ghost\n")

    r = run([osh, "gateway", "list"], env)
    lines = r.stdout.splitlines()
    assert strip(lines[0]) == "  NAME      ENDPOINT            TYPE   AUTH"
    assert lines[1] == "\x1b[32m* nemoclaw  http://127.0.0.1:9  local  plaintext\x1b[39m"
    r = run([osh, "gateway", "list", "-o", "json"], env)
    assert json.loads(r.stdout) == [{"active": True, "auth": "plaintext", "endpoint": "http://127.0.0.1:9",
                                     "name": "nemoclaw", "type": "local"}]
    assert r.stdout.startswith('[\n  {\n    "active": true,')

    r = run([osh, "status", "-g", "ghost"], env)  # unregistered -g ⇒ "No gateway configured"
    assert r.returncode == 0 and "No gateway configured." in strip(r.stdout)
    env2 = dict(env, OPENSHELL_GATEWAY="ghost")
    r = run([osh, "sandbox", "list"], env2)
    assert r.returncode == 1 and r.stderr.startswith("Error:   × Unknown gateway 'ghost'.\n")

    r = run([osh, "gateway", "select", "ghost"], env)
    assert r.returncode == 1 and "No gateway metadata found for 'ghost'." in r.stderr
    r = run([osh, "gateway", "select", "nemoclaw"], env)
    assert r.returncode == 0 and strip(r.stderr) == "✓ Active gateway set to 'nemoclaw'\n"

    # Unreachable gateway: RPC commands get tonic's transport chain; status prints the header first.
    r = run([osh, "sandbox", "list"], env)
    assert r.returncode == 1
    assert r.stderr == ("Error:   × transport error\n  ├─▶ tcp connect error\n  ├─▶ tcp connect error\n"
                        "  ╰─▶ Connection refused (os error 111)\n")
    r = run([osh, "status"], env)
    assert r.returncode == 1
    assert strip(r.stdout) == "Server Status\n\n  Gateway: nemoclaw\n  Server: http://127.0.0.1:9\n"
    assert r.stderr.startswith("Error:   × client error (Connect)\n")

    r = run([osh, "gateway", "remove", "nemoclaw"], env)
    assert r.returncode == 0 and strip(r.stderr) == "✓ Gateway registration 'nemoclaw' removed.\n"
    assert not (home / ".config" / "openshell" / "active_gateway").exists()


def test_clap_usage_errors_are_version_gated(host):
    home, bin_dir, env = host
    install(bin_dir, "0.0.44", None)
    osh = str(bin_dir / "openshell")
    r = run([osh, "sandbox", "list", "--json"], env)
    assert r.returncode == 2 and r.stderr.startswith("error: unexpected argument '--json' found\n")
    r = run([osh, "gateway", "destroy"], env)
    assert r.returncode == 2 and r.stderr.startswith("error: unrecognized subcommand 'destroy'\n")
    r = run([osh, "gateway", "list", "-o", "json"], env)  # `-o` only from 0.0.47
    assert r.returncode == 2 and r.stderr.startswith("error: unexpected argument '-o' found\n")
    install(bin_dir, "0.0.43", None)
    r = run([osh, "sandbox", "list", "-o", "json"], env)  # `-o` only from 0.0.44
    assert r.returncode == 2 and r.stderr.startswith("error: unexpected argument '-o' found\n")
    assert run([osh, "--help"], env).returncode == 0


def test_gateway_flag_errors(host):
    home, bin_dir, env = host
    install(bin_dir, None, "0.0.43")
    gw = str(bin_dir / "openshell-gateway")
    r = run([gw, "--disable-tls"], env)
    assert r.returncode == 1 and r.stderr == "Error:   × --db-url is required (or set OPENSHELL_DB_URL)\n"
    r = run([gw, "--db-url", f"sqlite:{home}/x.db"], env)
    assert r.returncode == 1
    assert r.stderr == "Error:   × --tls-cert is required when TLS is enabled (use --disable-tls to skip)\n"
    r = run([gw, "--bind", "127.0.0.1"], env)
    assert r.returncode == 2 and r.stderr.startswith("error: unexpected argument '--bind' found\n")


def _newer_db(path: Path, versions: list[int]) -> bytes:
    conn = db.connect(path)
    db.migrate(conn, db.migrations_for(versions, legacy=False))
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("version,port,dbver", [("0.0.43", 8080, [1, 4, 5]), ("0.0.44", 17670, [1, 4, 5, 6])])
def test_old_gateway_refuses_newer_db_exactly(host, version, port, dbver):
    """Default ports are visible in the bind line; the crash happens before anything listens."""
    home, bin_dir, env = host
    install(bin_dir, None, version)
    dbfile = home / "openshell.db"
    before = _newer_db(dbfile, dbver)
    r = run([str(bin_dir / "openshell-gateway"), "--disable-tls", "--db-url", f"sqlite:{dbfile}"], env)
    assert r.returncode == 1
    missing = dbver[-1]
    assert r.stderr == MIGRATION_ERROR.replace("migration 5", f"migration {missing}")
    assert f"Starting OpenShell server bind=127.0.0.1:{port}" in strip(r.stdout)
    assert "\x1b[3mbind\x1b[0m\x1b[2m=\x1b[0m" in r.stdout  # ANSI even when piped
    assert dbfile.read_bytes() == before
    r = run([str(bin_dir / "openshell-gateway"), "--disable-tls", "--db-url", f"sqlite:{dbfile}"],
            dict(env, NO_COLOR="1"))
    assert "\x1b[" not in r.stdout and "bind=127.0.0.1:" in r.stdout


def test_migration_crash_leaves_nothing_listening_and_forward_migrates(host, docker_client):
    home, bin_dir, env = host
    install(bin_dir, None, "0.0.43")
    dbfile = home / "state" / "openshell.db"
    port = free_port()
    gw = [str(bin_dir / "openshell-gateway"), "--port", str(port), "--disable-tls", "--db-url", f"sqlite:{dbfile}"]

    # 0.0.43 creates a fresh DB (1, 4) and serves; stop it with SIGTERM.
    proc = subprocess.Popen(gw, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: listening(port), 30)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0] == gw[0].encode()  # argv0 is the launcher path (NemoClaw's liveness check)
    finally:
        proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Shutdown signal received; stopping gateway" in strip(out)
    conn = sqlite3.connect(dbfile)
    assert [r[0] for r in conn.execute("SELECT version FROM _sqlx_migrations ORDER BY version")] == [1, 4]
    conn.close()
    assert oct(dbfile.stat().st_mode & 0o777) == "0o600"

    # 0.0.44 applies 005 silently.
    install(bin_dir, None, "0.0.44")
    proc = subprocess.Popen(gw, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: listening(port), 30)
    finally:
        proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == ""
    conn = sqlite3.connect(dbfile)
    rows = conn.execute("SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version").fetchall()
    cols = [r[1] for r in conn.execute("PRAGMA table_info(objects)")]
    conn.close()
    assert [(v, d, s) for v, d, s, _ in rows] == [(1, "create objects", 1), (4, "add object metadata", 1),
                                                  (5, "add resource version", 1)]
    assert rows[2][3] == hashlib.sha384(
        b"ALTER TABLE objects ADD COLUMN resource_version INTEGER NOT NULL DEFAULT 1;\n").digest()
    assert "labels" in cols and "resource_version" in cols

    # Back to 0.0.43: exact sqlx error, exit 1, DB bytes unchanged, nothing listening.
    before = dbfile.read_bytes()
    install(bin_dir, None, "0.0.43")
    proc = subprocess.Popen(gw, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err == MIGRATION_ERROR
    assert not listening(port)
    assert dbfile.read_bytes() == before
    assert pid_gone(proc.pid)
