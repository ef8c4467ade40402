"""A whole simulated NemoClaw-on-OpenShell host inside one home directory.

`up` does what NemoClaw onboarding does on the host-process driver (docs/reference/gateway-preflight.md,
"Host-process gateway"; docs/reference/gateway-recovery.md): install `openshell`/`openshell-gateway` into `<home>/.local/bin`, start the gateway as a
detached host process with its pid file, log and `runtime.json` marker in
`<home>/.local/state/nemoclaw/openshell-docker-gateway/`, register and select gateway
`nemoclaw`, create sandboxes, and write `<home>/.nemoclaw/sandboxes.json`.

Simulator bookkeeping (ports, versions, faults) lives in `<home>/.local/state/nemoclaw-sim/`.
Nothing outside `home` and this deployment's own containers is ever touched.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import rpc, versions
from .config import GatewayMetadata, Registry
from .install import install_program
from .versions import DEFAULT_CLI_VERSION, DEFAULT_GATEWAY_VERSION, Version

GATEWAY_NAME = "nemoclaw"
SANDBOX_NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
DEFAULT_AGENT_VERSION = "2026.5.22"


class SimError(Exception):
    """A failure to report to the user as one clear message."""


# --- paths -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def bin(self) -> Path:
        return self.home / ".local" / "bin"

    @property
    def gateway_state(self) -> Path:
        return self.home / ".local" / "state" / "nemoclaw" / "openshell-docker-gateway"

    @property
    def sim_state(self) -> Path:
        return self.home / ".local" / "state" / "nemoclaw-sim"

    @property
    def deployment_file(self) -> Path:
        return self.sim_state / "deployment.json"

    @property
    def faults_file(self) -> Path:
        return self.sim_state / "faults.json"

    @property
    def private_bin(self) -> Path:
        """A CLI matching the gateway's version, used by the simulator itself to set things up."""
        return self.sim_state / "bin"

    @property
    def registry_file(self) -> Path:
        return self.home / ".nemoclaw" / "sandboxes.json"

    @property
    def db(self) -> Path:
        return self.gateway_state / "openshell.db"

    @property
    def pid_file(self) -> Path:
        return self.gateway_state / "openshell-gateway.pid"

    @property
    def log_file(self) -> Path:
        return self.gateway_state / "openshell-gateway.log"

    @property
    def marker(self) -> Path:
        return self.gateway_state / "runtime.json"


@dataclass
class Deployment:
    """What `up` recorded, so later commands find the ports, versions and gateway."""

    home: str
    deployment_id: str
    cli_version: str
    gateway_version: str
    agent_version: str
    port: int
    health_port: int
    docker_host: str
    gateway_pid: int | None = None
    sandboxes: list[str] = field(default_factory=list)
    data_root: str = "/sandbox"  # the agent images' WorkingDir (a data root from 0.0.99)
    upgraded_from: str | None = None  # the 0.0.x gateway release `upgrade-openshell` replaced

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def load(home: Path) -> Deployment:
    p = Paths(home).deployment_file
    try:
        return Deployment(**json.loads(p.read_text()))
    except FileNotFoundError:
        raise SimError(f"no simulated deployment in {home} (run: nemoclaw-sim up --home {home})") from None
    except (ValueError, TypeError) as e:
        raise SimError(f"corrupt simulator state file {p}: {e}") from None


def save(dep: Deployment) -> None:
    p = Paths(Path(dep.home)).deployment_file
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(dep), indent=2) + "\n")
    os.replace(tmp, p)


# --- environment --------------------------------------------------------------------------------------

def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def sim_env(home: Path, dhost: str | None = None) -> dict[str, str]:
    """An environment in which `openshell`, `nemoclaw` and friends see only `home`."""
    keep = {k: v for k, v in os.environ.items()
            if k in ("LANG", "LC_ALL", "TERM", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL")}
    venv_bin = os.path.dirname(os.path.abspath(sys.executable))
    path = os.pathsep.join([str(Paths(home).bin), venv_bin, "/usr/local/bin", "/usr/bin", "/bin"])
    keep.update({
        "HOME": str(home), "PATH": path, "DOCKER_HOST": dhost or docker_host(),
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_CACHE_HOME": str(home / ".cache"),
    })
    return keep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# --- processes -----------------------------------------------------------------------------------------

def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a for a in raw.decode(errors="replace").split("\0") if a]


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def pid_alive(pid: int | None) -> bool:
    """Alive and not a zombie (a zombie has an empty cmdline, as NemoClaw's check sees it)."""
    if not pid:
        return False
    _reap(pid)
    return bool(_cmdline(pid))


def is_gateway_process(pid: int | None) -> bool:
    args = _cmdline(pid) if pid else []
    return bool(args) and os.path.basename(args[0]) == "openshell-gateway"


def _stop_pid(pid: int, timeout: float = 60.0) -> None:
    if not is_gateway_process(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while pid_alive(pid):
        time.sleep(0.1)


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _iso_now() -> str:
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _node_arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


GATEWAY_TOML = """# Written by nemoclaw-sim: a plaintext, unauthenticated local gateway (0.1.6+ needs the opt-out).
[openshell]
version = 2

[openshell.gateway.auth]
allow_unauthenticated_users = true
"""


def gateway_argv(paths: Paths, dep: Deployment) -> list[str]:
    argv = [str(paths.bin / "openshell-gateway"), "--bind-address", "127.0.0.1", "--port", str(dep.port)]
    if dep.health_port:
        argv += ["--health-port", str(dep.health_port)]
    argv += ["--drivers", "docker", "--disable-tls", "--db-url", f"sqlite:{paths.db}"]
    if Version(dep.gateway_version).at_least("0.1.0"):
        config = paths.gateway_state / "gateway.toml"
        if not config.exists():
            _write_private(config, GATEWAY_TOML)
        argv += ["--config", str(config)]
    return argv


def start_gateway(dep: Deployment, wait: bool = True, timeout: float = 60.0) -> int:
    """Launch the installed gateway like onboarding: detached, pid file, marker, then poll health.

    Returns the pid. If the process exits during the wait (e.g. a migration error) the pid file
    and marker still name it — as after the real crash — and SimError carries the log tail.
    """
    paths = Paths(Path(dep.home))
    paths.gateway_state.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(paths.gateway_state, 0o700)
    env = sim_env(Path(dep.home), dep.docker_host)
    env.update({"NEMOCLAW_SIM_FAULTS": str(paths.faults_file), "NEMOCLAW_SIM_DEPLOYMENT": dep.deployment_id})
    argv = gateway_argv(paths, dep)
    log = open(paths.log_file, "ab")
    offset = log.tell()
    try:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=dep.home)
    finally:
        log.close()
    _write_private(paths.pid_file, f"{proc.pid}\n", 0o600)
    desired = hashlib.sha256(json.dumps({"argv": argv[1:], "dockerHost": dep.docker_host}).encode()).hexdigest()
    marker = {
        "version": 1, "pid": proc.pid, "driver": "docker", "platform": sys.platform, "arch": _node_arch(),
        "endpoint": dep.endpoint, "desiredEnvHash": desired,
        "gatewayBin": os.path.realpath(paths.bin / "openshell-gateway"),
        "openshellVersion": dep.cli_version, "dockerHost": dep.docker_host, "createdAt": _iso_now(),
    }
    _write_private(paths.marker, json.dumps(marker, indent=2) + "\n", 0o600)
    dep.gateway_pid = proc.pid
    save(dep)
    if not wait:
        return proc.pid
    deadline = time.monotonic() + timeout
    while True:
        rc = proc.poll()
        if rc is not None:
            tail = paths.log_file.read_bytes()[offset:].decode(errors="replace").strip().splitlines()[-8:]
            raise SimError(f"openshell-gateway {dep.gateway_version} exited with status {rc}; log tail:\n  "
                           + "\n  ".join(tail))
        try:
            rpc.call(dep.endpoint, "Health", {}, Version(dep.gateway_version), timeout=2)
            return proc.pid
        except (rpc.TransportError, rpc.RpcStatus):
            pass
        if time.monotonic() > deadline:
            raise SimError(f"openshell-gateway did not become healthy within {timeout:.0f}s (log: {paths.log_file})")
        time.sleep(0.1)


def stop_gateway(dep: Deployment) -> None:
    """Stop the gateway this deployment started, and one NemoClaw (re)started for this home
    (its pid file), if that process runs this home's gateway binary."""
    pids = [dep.gateway_pid] if dep.gateway_pid else []
    try:
        pids.append(int(Paths(Path(dep.home)).pid_file.read_text().strip()))
    except (OSError, ValueError):
        pass
    home = str(Path(dep.home).resolve())
    for i, pid in enumerate(dict.fromkeys(pids)):
        args = _cmdline(pid)
        if i == 0 and pid == dep.gateway_pid or (args and args[0].startswith(home + os.sep)):
            _stop_pid(pid)


# --- openshell helpers ---------------------------------------------------------------------------------

def run_openshell(dep: Deployment, args: list[str], private: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `openshell` in the deployment's environment; `private` uses the CLI matching the gateway."""
    paths = Paths(Path(dep.home))
    exe = (paths.private_bin if private else paths.bin) / "openshell"
    res = subprocess.run([str(exe), *args], env=sim_env(Path(dep.home), dep.docker_host), capture_output=True,
                         text=True, timeout=300, stdin=subprocess.DEVNULL)
    if check and res.returncode != 0:
        raise SimError(f"`openshell {' '.join(args)}` failed (exit {res.returncode}):\n{res.stderr.strip()}")
    return res


def _docker(dep: "Deployment | None" = None):
    """The engine of the deployment (recorded at `up`), so later commands work from any shell."""
    import docker

    if dep is not None and dep.docker_host:
        return docker.DockerClient(base_url=dep.docker_host, timeout=120)
    return docker.from_env(timeout=120)


def _registry_file(paths: Paths, port: int | None) -> Path:
    """NemoClaw's registry of gateway port `port`: the default port's is `~/.nemoclaw/sandboxes.json`,
    any other's `~/.nemoclaw/gateways/<port>/sandboxes.json`."""
    if port is None:
        return paths.registry_file
    return paths.home / ".nemoclaw" / "gateways" / str(port) / "sandboxes.json"


def _write_registry(paths: Paths, entries: dict[str, dict[str, Any]], default: str | None, port: int | None = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Write one registry root, keeping the top-level keys it had that are not ours (`extra`)."""
    path = _registry_file(paths, port)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**(extra or {}), "sandboxes": entries, "defaultSandbox": default}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _read_registry(paths: Paths, port: int | None = None) -> tuple[dict[str, dict[str, Any]], str | None, dict[str, Any]]:
    try:
        data = json.loads(_registry_file(paths, port).read_text())
    except FileNotFoundError:
        return {}, None, {}
    extra = {k: v for k, v in data.items() if k not in ("sandboxes", "defaultSandbox")}
    return dict(data.get("sandboxes") or {}), data.get("defaultSandbox"), extra


def fingerprint(sandbox_id: str) -> str:
    """NemoClaw's `lifecycleLiveIdentityFingerprint`: lower-case hex SHA-256 of the OpenShell id."""
    return hashlib.sha256(sandbox_id.encode()).hexdigest()


def registry_entry(name: str, agent_version: str, sandbox_id: str | None = None, gateway_port: int | None = None,
                   from_image: str | None = None) -> dict[str, Any]:
    """A row as today's NemoClaw writes it: the fields of old releases, then the lifecycle ones
    (the identity fingerprint when the sandbox's id is known; `fromImage` for a pinned sandbox)."""
    row: dict[str, Any] = {
        "name": name, "createdAt": _iso_now(), "model": "nvidia/nemotron-3-super-120b-a12b",
        "provider": "nvidia-prod", "gpuEnabled": False, "policies": ["pypi", "npm"], "agent": "openclaw",
        "agentVersion": agent_version, "nimContainer": None, "gatewayName": GATEWAY_NAME,
        "openshellDriver": "docker", "lifecycleGeneration": 1, "stopped": False,
    }
    if gateway_port is not None:
        row["gatewayPort"] = gateway_port
    if sandbox_id:
        row["lifecycleLiveIdentityFingerprint"] = fingerprint(sandbox_id)
    if from_image:
        row["fromImage"] = from_image
    return row


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sandbox_id(dep: "Deployment", name: str) -> str | None:
    """The id `openshell sandbox get NAME` prints (`Id:`), or None."""
    res = run_openshell(dep, ["sandbox", "get", name], private=True, check=False)
    m = re.search(r"^\s*Id:\s*(\S+)", _ANSI.sub("", res.stdout), re.MULTILINE)
    return m.group(1) if m else None


# --- public operations -------------------------------------------------------------------------------

def up(home: Path, sandboxes: int = 2, cli: str = DEFAULT_CLI_VERSION, gateway: str = DEFAULT_GATEWAY_VERSION,
       port: int | None = None, health_port: int | None = None,
       agent_version: str = DEFAULT_AGENT_VERSION, data_root: str = "/sandbox") -> Deployment:
    from .images import agent_image_tag, ensure_agent_image, ensure_base_image

    home = home.resolve()
    Version(cli), Version(gateway)
    paths = Paths(home)
    if paths.deployment_file.exists():
        old = load(home)
        if pid_alive(old.gateway_pid) and is_gateway_process(old.gateway_pid):
            raise SimError(f"a simulated deployment is already running in {home} (gateway pid {old.gateway_pid}); "
                           f"run: nemoclaw-sim down --home {home}")
    try:
        client = _docker()
        client.ping()
    except Exception as e:  # noqa: BLE001
        raise SimError(f"no Docker engine reachable at DOCKER_HOST={docker_host()}: {e}") from None
    ensure_base_image(client)
    ensure_agent_image(client, agent_version, data_root)
    ensure_agent_image(client, DEFAULT_AGENT_VERSION, data_root)  # what a rebuild moves to

    port = port or _free_port()
    health_port = _free_port() if health_port is None else health_port  # 0: no health listener (upstream's default)
    for p in (port, health_port) if health_port else (port,):
        if not _port_free(p):
            raise SimError(f"port {p} on 127.0.0.1 is already in use")
    dep_id = hashlib.sha256(f"{home}:{time.time_ns()}".encode()).hexdigest()[:16]
    dep = Deployment(home=str(home), deployment_id=dep_id, cli_version=cli, gateway_version=gateway,
                     agent_version=agent_version, port=port, health_port=health_port, docker_host=docker_host(),
                     data_root=data_root)
    install_program(paths.bin, "openshell", cli)
    install_program(paths.bin, "openshell-gateway", gateway)
    install_program(paths.private_bin, "openshell", gateway)
    save(dep)
    start_gateway(dep)

    reg = Registry.from_env(sim_env(home))
    reg.save(GatewayMetadata(name=GATEWAY_NAME, gateway_endpoint=dep.endpoint, is_remote=False, gateway_port=0,
                             auth_mode="plaintext"))
    reg.set_active(GATEWAY_NAME)

    names = [SANDBOX_NAMES[i] if i < len(SANDBOX_NAMES) else f"sandbox-{i + 1}" for i in range(sandboxes)]
    def create(n: str) -> str | None:
        run_openshell(dep, ["sandbox", "create", "--name", n, "--from", agent_image_tag(agent_version, data_root)])
        return sandbox_id(dep, n)

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(create, names))
    _write_registry(paths, {n: registry_entry(n, agent_version, i) for n, i in zip(names, ids)}, names[0] if names else None)
    dep.sandboxes = names
    save(dep)
    return dep


def down(home: Path) -> list[str]:
    """Stop the gateway, remove this deployment's containers (and its cluster container)."""
    from . import cluster
    from .driver import LABEL_DEPLOYMENT

    home = home.resolve()
    dep = load(home)
    paths = Paths(home)
    actions: list[str] = []
    stop_gateway(dep)
    actions.append("gateway stopped")
    client = _docker(dep)
    for c in client.containers.list(all=True, filters={"label": f"{LABEL_DEPLOYMENT}={dep.deployment_id}"}):
        if c.labels.get("nemoclaw-sim/role") == "cluster":
            continue
        c.remove(force=True)
        actions.append(f"removed container {c.name}")
    for v in client.volumes.list(filters={"label": f"{LABEL_DEPLOYMENT}={dep.deployment_id}"}):
        v.remove(force=True)
        actions.append(f"removed volume {v.name}")
    if cluster.owner(client) == dep.deployment_id:
        cluster.down(client)
        actions.append(f"removed container {cluster.cluster_name()}")
    for f in (paths.pid_file, paths.marker):
        f.unlink(missing_ok=True)
    dep.gateway_pid = None
    save(dep)
    return actions


def swap_gateway(home: Path, version: str, wait: bool = True) -> tuple[Deployment, str | None]:
    """Replace the on-disk gateway with another release and restart it.

    Returns (deployment, error): error is the failure text when the new binary did not come up
    (e.g. 0.0.43 on a 0.0.44 database), in which case the marker's pid is dead.
    """
    Version(version)
    home = home.resolve()
    dep = load(home)
    stop_gateway(dep)
    paths = Paths(home)
    install_program(paths.bin, "openshell-gateway", version)
    install_program(paths.private_bin, "openshell", version)
    dep.gateway_version = version
    save(dep)
    try:
        start_gateway(dep, wait=wait)
        return dep, None
    except SimError as e:
        return load(home), str(e)


def swap_cli(home: Path, version: str) -> Deployment:
    Version(version)
    home = home.resolve()
    dep = load(home)
    install_program(Paths(home).bin, "openshell", version)
    dep.cli_version = version
    save(dep)
    return dep


def of_gateway_line(dep: Deployment, labels: dict[str, str]) -> bool:
    """Whether a container of this deployment has the layout its gateway's release line creates:
    the 0.1.x pair carries the isolation-role label, a 0.0.x container none. After
    `upgrade-openshell` the 0.0.x containers left in Docker are the ones that do not."""
    from .driver import ROLE_LABELS

    return any(k in labels for k in ROLE_LABELS) == versions.split_supervisor(Version(dep.gateway_version))


def _container_for(dep: Deployment, name: str):
    from .driver import LABEL_DEPLOYMENT, LABEL_NAME, is_supervisor

    found = _docker(dep).containers.list(all=True, filters={"label": [f"{LABEL_DEPLOYMENT}={dep.deployment_id}",
                                                                  f"{LABEL_NAME}={name}"]})
    found = [c for c in found if not is_supervisor(c.labels)]  # 0.1.x: the workload
    mine = [c for c in found if of_gateway_line(dep, c.labels)]
    found = mine if mine or dep.upgraded_from else found  # never a 0.0.x one upgrade-openshell left unadopted
    if not found:
        raise SimError(f"no sandbox container named '{name}' in this deployment")
    return found[0]


def _gateway_up(dep: Deployment) -> bool:
    return pid_alive(dep.gateway_pid) and is_gateway_process(dep.gateway_pid)


def sandbox_add(home: Path, name: str, agent_version: str | None = None, stopped: bool = False,
                register: bool = True, gateway_port: int | None = None, pinned: bool = False,
                stop_how: str | None = None) -> None:
    """Create a sandbox and register it: in the registry of `gateway_port` when given (NemoClaw's
    per-port root), else the default one; `pinned` records it as onboarded from its image's
    digest (`fromImage: <repository>@sha256:<image id>`)."""
    from .images import ensure_agent_image

    home = home.resolve()
    dep = load(home)
    if not _gateway_up(dep):
        raise SimError("the simulated gateway is not running (see: nemoclaw-sim status)")
    version = agent_version or dep.agent_version
    client = _docker(dep)
    image = ensure_agent_image(client, version, dep.data_root)
    run_openshell(dep, ["sandbox", "create", "--name", name, "--from", image])
    if register:
        paths = Paths(home)
        from_image = f"{image.rsplit(':', 1)[0]}@{client.images.get(image).id}" if pinned else None
        entries, default, extra = _read_registry(paths, gateway_port)
        entries[name] = registry_entry(name, version, sandbox_id(dep, name), gateway_port, from_image)
        _write_registry(paths, entries, default or name, gateway_port, extra)
    dep.sandboxes = [*dep.sandboxes, name]
    save(dep)
    if stopped:
        sandbox_stop(home, name, stop_how)


STOP_WAYS = ("openshell", "docker", "kill")


def _has_start_stop(dep: Deployment) -> bool:
    return versions.has_sandbox_start_stop(Version(dep.gateway_version))


def sandbox_stop(home: Path, name: str, how: str | None = None) -> None:
    """Stop sandbox NAME. `openshell` (the default where the gateway has `sandbox stop`, 0.0.116+):
    through the gateway, so its phase is Stopped. `docker` (a bare `docker stop`) or `kill`
    (`docker kill`): behind the gateway's back, so it is Error and the gateway won't resume it."""
    dep = load(home.resolve())
    how = how or ("openshell" if _has_start_stop(dep) else "docker")
    if how not in STOP_WAYS:
        raise SimError(f"unknown way to stop a sandbox: {how!r} (one of {', '.join(STOP_WAYS)})")
    if how == "openshell":
        run_openshell(dep, ["sandbox", "stop", name])
        return
    container = _container_for(dep, name)
    if how == "kill":
        container.kill()
    else:
        container.stop(timeout=10)
    if _gateway_up(dep):
        run_openshell(dep, ["sandbox", "get", name], check=False)


def sandbox_start(home: Path, name: str, how: str | None = None) -> None:
    """Start sandbox NAME: through the gateway where it has `sandbox start` (it refuses an Error
    sandbox on 0.0.x), else (or with how="docker") a bare `docker start` of its container."""
    dep = load(home.resolve())
    how = how or ("openshell" if _has_start_stop(dep) else "docker")
    if how == "openshell":
        run_openshell(dep, ["sandbox", "start", name])
        return
    _container_for(dep, name).start()
    if _gateway_up(dep):
        run_openshell(dep, ["sandbox", "get", name], check=False)


def fault_set(home: Path, op: str, message: str, code: str = "Internal", sticky: bool = False) -> None:
    paths = Paths(home.resolve())
    faults = fault_list(home)
    faults[op] = {"message": message, "code": code, "sticky": sticky}
    paths.sim_state.mkdir(parents=True, exist_ok=True)
    paths.faults_file.write_text(json.dumps(faults, indent=2))


def fault_clear(home: Path, op: str | None = None) -> None:
    paths = Paths(home.resolve())
    faults = {} if op is None else {k: v for k, v in fault_list(home).items() if k != op}
    if paths.faults_file.exists() or faults:
        paths.faults_file.write_text(json.dumps(faults, indent=2))


def fault_list(home: Path) -> dict[str, Any]:
    try:
        return json.loads(Paths(home.resolve()).faults_file.read_text())
    except (OSError, ValueError):
        return {}


def status(home: Path) -> dict[str, Any]:
    from . import cluster
    from .driver import LABEL_DEPLOYMENT, LABEL_NAME

    home = home.resolve()
    dep = load(home)
    client = _docker(dep)
    from .driver import is_supervisor

    boxes: dict[str, str] = {}
    unadopted: dict[str, str] = {}  # 0.0.x containers an upgrade-openshell left behind, by container name
    for c in client.containers.list(all=True, filters={"label": f"{LABEL_DEPLOYMENT}={dep.deployment_id}"}):
        if c.labels.get("nemoclaw-sim/role") == "cluster" or is_supervisor(c.labels):
            continue
        if of_gateway_line(dep, c.labels) or not dep.upgraded_from:
            boxes[c.labels.get(LABEL_NAME, c.name)] = c.status
        else:
            unadopted[c.name] = c.status
    cl = None
    if cluster.owner(client) is not None:
        c = client.containers.get(cluster.cluster_name())
        cl = {"name": c.name, "image": c.attrs["Config"]["Image"], "status": c.status}
    return {
        "home": dep.home, "bin": str(Paths(home).bin), "endpoint": dep.endpoint, "port": dep.port,
        "health_port": dep.health_port, "cli_version": dep.cli_version, "gateway_version": dep.gateway_version,
        "agent_version": dep.agent_version, "gateway_pid": dep.gateway_pid, "gateway_running": _gateway_up(dep),
        "docker_host": dep.docker_host, "sandboxes": boxes, "unadopted": unadopted,
        "upgraded_from": dep.upgraded_from, "cluster": cl, "faults": fault_list(home),
    }
