"""`nemoclaw-sim`: install, run and break a simulated OpenShell host for tests and demos."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import click

from . import deploy
from .install import install as install_programs
from .term import GRPC_CODES
from .versions import DEFAULT_CLI_VERSION, DEFAULT_GATEWAY_VERSION, Version

HOME_OPTION = click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
                           help="Home directory of the simulated host (default: $HOME).")


def _home(home: Path | None) -> Path:
    return (home or Path(os.environ.get("HOME") or Path.home())).resolve()


def _version(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        Version(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


class _Group(click.Group):
    """Turns SimError into one clean line and exit 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except deploy.SimError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Local stand-in for NVIDIA OpenShell (`openshell`, `openshell-gateway`) on a real Docker engine.

    Everything lives under --home (default $HOME) plus this deployment's own containers.
    """


@main.command()
@click.option("--cli", callback=_version, help="Version of `openshell` to write (e.g. 0.0.44).")
@click.option("--gateway", callback=_version, help="Version of `openshell-gateway` to write (e.g. 0.0.43).")
@click.option("--bin", "bin_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the programs into.")
def install(cli: str | None, gateway: str | None, bin_dir: Path) -> None:
    """Write `openshell` / `openshell-gateway` launchers reporting the given versions."""
    if not cli and not gateway:
        raise click.UsageError("give --cli and/or --gateway")
    for path in install_programs(bin_dir, cli, gateway):
        click.echo(f"installed {path}")


@main.command()
@HOME_OPTION
@click.option("--sandboxes", default=2, show_default=True, type=click.IntRange(0, 50), help="Sandboxes to create.")
@click.option("--cli", default=DEFAULT_CLI_VERSION, show_default=True, callback=_version, help="openshell version.")
@click.option("--gateway", default=DEFAULT_GATEWAY_VERSION, show_default=True, callback=_version,
              help="openshell-gateway version.")
@click.option("--port", type=int, default=None, help="Gateway port (default: a free loopback port).")
@click.option("--health-port", type=int, default=None,
              help="Health port (default: a free loopback port; 0: no health listener, upstream's default).")
@click.option("--agent-version", default=deploy.DEFAULT_AGENT_VERSION, show_default=True,
              help="OpenClaw version baked into the sandbox image.")
@click.option("--data-root", default="/sandbox", show_default=True,
              help="WorkingDir of the sandbox images (the data root from 0.0.99), e.g. /work.")
def up(home: Path | None, sandboxes: int, cli: str, gateway: str, port: int | None, health_port: int | None,
       agent_version: str, data_root: str) -> None:
    """Install, start the gateway, register `nemoclaw`, create sandboxes, write the registry."""
    try:
        dep = deploy.up(_home(home), sandboxes=sandboxes, cli=cli, gateway=gateway, port=port,
                        health_port=health_port, agent_version=agent_version, data_root=data_root)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"gateway {dep.gateway_version} (pid {dep.gateway_pid}) at {dep.endpoint}, health port "
               f"{dep.health_port}; openshell {dep.cli_version}; sandboxes: {', '.join(dep.sandboxes) or 'none'}")
    click.echo(f"state: {deploy.Paths(Path(dep.home)).deployment_file}")


@main.command()
@HOME_OPTION
def down(home: Path | None) -> None:
    """Stop the gateway and remove this deployment's containers (and its cluster container)."""
    for line in deploy.down(_home(home)):
        click.echo(line)


@main.command()
@HOME_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(home: Path | None, as_json: bool) -> None:
    """What runs: versions, gateway pid and ports, sandbox containers, cluster container, faults."""
    st = deploy.status(_home(home))
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"home:      {st['home']}")
    click.echo(f"openshell: {st['cli_version']}  ({st['bin']}/openshell)")
    state = "running" if st["gateway_running"] else "not running"
    click.echo(f"gateway:   {st['gateway_version']}  pid {st['gateway_pid']} ({state}) at {st['endpoint']}, "
               f"health port {st['health_port']}")
    click.echo("sandboxes: " + (", ".join(f"{n} ({s})" for n, s in sorted(st["sandboxes"].items())) or "none"))
    if st["unadopted"]:
        click.echo(f"unadopted: {', '.join(f'{n} ({s})' for n, s in sorted(st['unadopted'].items()))}  "
                   f"(left by the reinstall over {st['upgraded_from']})")
    if st["cluster"]:
        c = st["cluster"]
        click.echo(f"cluster:   {c['name']} {c['image']} ({c['status']})")
    if st["faults"]:
        click.echo("faults:    " + ", ".join(f"{k}: {v['message']}" for k, v in st["faults"].items()))


@main.command("swap-gateway")
@HOME_OPTION
@click.argument("version", callback=_version)
def swap_gateway(home: Path | None, version: str) -> None:
    """Replace the on-disk gateway with VERSION and restart it (it may crash on a newer DB)."""
    dep, error = deploy.swap_gateway(_home(home), version)
    if error:
        click.echo(f"openshell-gateway {version} installed but did not start (pid {dep.gateway_pid} is dead):", err=True)
        click.echo(error, err=True)
        raise SystemExit(1)
    click.echo(f"openshell-gateway {version} running (pid {dep.gateway_pid}) at {dep.endpoint}")


@main.command("swap-cli")
@HOME_OPTION
@click.argument("version", callback=_version)
def swap_cli(home: Path | None, version: str) -> None:
    """Replace the on-disk `openshell` with VERSION."""
    deploy.swap_cli(_home(home), version)
    click.echo(f"openshell {version} installed")


@main.command("upgrade-openshell")
@HOME_OPTION
@click.argument("version", callback=_version)
def upgrade_openshell(home: Path | None, version: str) -> None:
    """Reinstall OpenShell VERSION (0.1.x) over a 0.0.x deployment, as a user following the 0.1 upgrade guide.

    Stops the 0.0.x gateway, moves its database aside, installs the 0.1.x CLI and gateway and starts
    the gateway on a fresh database. 0.0.x sandbox containers still in Docker stay there, unadopted
    (the 0.1.x gateway neither lists nor deletes them); NemoClaw's registry is left as it is.
    """
    from .reinstall import upgrade_openshell as reinstall

    r = reinstall(_home(home), version)
    pids = ", ".join(str(p) for p in r.old_gateway_pids)
    click.echo(f"openshell-gateway {r.old_gateway} stopped (pid {pids})" if pids else
               f"openshell-gateway {r.old_gateway} was not running")
    if r.cluster_stopped:
        click.echo(f"container {r.cluster_stopped} stopped")
    if r.db_backup:
        click.echo(f"its database moved to {r.db_backup}")
    click.echo(f"openshell {r.version} and openshell-gateway {r.version} installed (were {r.old_cli} and {r.old_gateway})")
    click.echo(f"openshell-gateway {r.version} running (pid {r.gateway_pid}) at {r.endpoint} on a fresh database")
    click.echo("0.0.x sandbox containers left in Docker, unadopted: " + (", ".join(r.unadopted) or "none"))


@main.group()
def sandbox() -> None:
    """Add, stop and start sandboxes of a running deployment."""


@sandbox.command("add")
@HOME_OPTION
@click.argument("name")
@click.option("--agent-version", default=None, help="OpenClaw version (default: the deployment's).")
@click.option("--stopped", is_flag=True, help="Stop it after creating it (as `sandbox stop` does).")
@click.option("--unregistered", is_flag=True, help="Do not add it to ~/.nemoclaw/sandboxes.json.")
@click.option("--gateway-port", type=int, default=None,
              help="Register it in that port's registry, ~/.nemoclaw/gateways/<port>/sandboxes.json.")
@click.option("--pinned", is_flag=True, help="Record it as onboarded from its image's digest (fromImage: repo@sha256:...).")
def sandbox_add(home: Path | None, name: str, agent_version: str | None, stopped: bool, unregistered: bool,
                gateway_port: int | None, pinned: bool) -> None:
    """Create sandbox NAME through the gateway and register it with NemoClaw."""
    deploy.sandbox_add(_home(home), name, agent_version=agent_version, stopped=stopped, register=not unregistered,
                       gateway_port=gateway_port, pinned=pinned)
    click.echo(f"sandbox {name} created" + (" and stopped" if stopped else ""))


@sandbox.command("stop")
@HOME_OPTION
@click.argument("name")
@click.option("--how", type=click.Choice(deploy.STOP_WAYS), default=None,
              help="openshell: `openshell sandbox stop` (phase Stopped; the default from 0.0.116); docker: a bare "
                   "`docker stop`, kill: `docker kill` (both behind the gateway's back: phase Error).")
def sandbox_stop(home: Path | None, name: str, how: str | None) -> None:
    """Stop sandbox NAME (through the gateway where it can, else behind its back)."""
    deploy.sandbox_stop(_home(home), name, how)
    click.echo(f"sandbox {name} stopped")


@sandbox.command("start")
@HOME_OPTION
@click.argument("name")
@click.option("--bare", is_flag=True, help="A bare `docker start` of its container instead of `openshell sandbox start`.")
def sandbox_start(home: Path | None, name: str, bare: bool) -> None:
    """Start sandbox NAME (through the gateway from 0.0.116, else its container)."""
    deploy.sandbox_start(_home(home), name, "docker" if bare else None)
    click.echo(f"sandbox {name} started")


@main.group()
def fault() -> None:
    """Make the gateway fail an RPC realistically (gRPC status, shown by `openshell` as tonic does)."""


@fault.command("set")
@HOME_OPTION
@click.argument("op", type=click.Choice(["create", "list", "get", "delete", "exec"]))
@click.argument("message")
@click.option("--code", type=click.Choice(GRPC_CODES), default="Internal", show_default=True)
@click.option("--sticky", is_flag=True, help="Fail every call, not just the next one.")
def fault_set(home: Path | None, op: str, message: str, code: str, sticky: bool) -> None:
    """Fail the next OP (`openshell sandbox OP`) with MESSAGE."""
    deploy.fault_set(_home(home), op, message, code, sticky)
    click.echo(f"fault set: {op} → {code}: {message}" + (" (sticky)" if sticky else " (once)"))


@fault.command("clear")
@HOME_OPTION
@click.argument("op", required=False)
def fault_clear(home: Path | None, op: str | None) -> None:
    """Remove the fault for OP (all faults without OP)."""
    deploy.fault_clear(_home(home), op)
    click.echo("faults cleared")


@main.group()
def cluster() -> None:
    """The legacy `openshell-cluster-nemoclaw` container (k3s era, ≤0.0.36)."""


@cluster.command("up")
@HOME_OPTION
@click.option("--version", "version", default="0.0.36", show_default=True, callback=_version)
@click.option("--port", type=int, default=None,
              help="Host port for 30051/tcp on 127.0.0.2 (default: the deployment's gateway port, else 8080).")
def cluster_up(home: Path | None, version: str, port: int | None) -> None:
    """Run the cluster container from a local `ghcr.io/nvidia/openshell/cluster:<version>` image."""
    from . import cluster as cl

    dep_id = None
    try:
        dep = deploy.load(_home(home))
        dep_id, port = dep.deployment_id, port or dep.port
    except deploy.SimError:
        pass
    name = cl.up(deploy._docker(), version, port or 8080, deployment=dep_id)
    click.echo(f"{name} running, 30051/tcp → {cl.CLUSTER_HOST_IP}:{port or 8080}")


@cluster.command("down")
def cluster_down() -> None:
    """Remove the cluster container, its volume and network."""
    from . import cluster as cl

    removed = cl.down(deploy._docker())
    click.echo("cluster container removed" if removed else "no cluster container")


@main.command()
@HOME_OPTION
def env(home: Path | None) -> None:
    """Print `export` lines for a shell that sees only the simulated home."""
    h = _home(home)
    try:
        dhost = deploy.load(h).docker_host
    except deploy.SimError:  # no deployment yet: the current DOCKER_HOST
        dhost = None
    for k, v in sorted(deploy.sim_env(h, dhost).items()):
        click.echo(f"export {k}={shlex.quote(v)}")


if __name__ == "__main__":
    main()
