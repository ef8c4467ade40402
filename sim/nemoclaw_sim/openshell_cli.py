"""`openshell`: the OpenShell CLI stand-in at the launcher's version 
(docs/reference/openshell-cli-and-gateway.md: "CLI conventions", "Commands", "Version skew").

Data goes to stdout with unconditional ANSI styling; progress and fatal errors go to stderr;
fatal errors are miette reports (exit 1) and usage errors clap's (exit 2).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from typing import Any

from . import rpc, term, versions, wire
from .clapargs import ClapParser, reject_extras
from .config import GatewayMetadata, Registry, is_loopback
from .versions import Version

PHASE_STYLE = {"Ready": term.green, "Error": term.red, "Provisioning": term.yellow, "Deleting": term.dimmed,
               "Stopped": term.dimmed, "Stopping": term.yellow, "Starting": term.yellow}


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def err(line: str = "") -> None:
    sys.stdout.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def check() -> str:
    return term.bold(term.green("✓"))


# --- arguments --------------------------------------------------------------------------------------

def _globals(p: argparse.ArgumentParser, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    p.add_argument("-g", "--gateway", default=default, help="Gateway name (env OPENSHELL_GATEWAY)")
    p.add_argument("--gateway-endpoint", default=default, help="Gateway endpoint (env OPENSHELL_GATEWAY_ENDPOINT)")


def build_parser(v: Version) -> ClapParser:
    top = ClapParser(prog="openshell", usage_line="openshell [OPTIONS] <COMMAND>",
                     description="OpenShell CLI (NemoClaw simulator stand-in)")
    top.add_argument("-V", "--version", action="version", version=f"openshell {v}")
    _globals(top, True)
    cmds = top.add_subparsers(dest="command", required=True, parser_class=ClapParser)

    def leaf(group: Any, name: str, usage: str, help_: str) -> ClapParser:
        p = group.add_parser(name, help=help_, usage_line=usage)
        _globals(p, False)
        return p

    leaf(cmds, "status", "openshell status [OPTIONS]", "Show gateway status")

    gw = cmds.add_parser("gateway", help="Manage gateway registrations", usage_line="openshell gateway <COMMAND>")
    gws = gw.add_subparsers(dest="gw_command", required=True, parser_class=ClapParser)
    p = leaf(gws, "add", "openshell gateway add [OPTIONS] <ENDPOINT>", "Register an existing gateway")
    p.add_argument("endpoint")
    p.add_argument("--name")
    p.add_argument("--local", action="store_true")
    p.add_argument("--remote")
    p = leaf(gws, "select", "openshell gateway select [OPTIONS] [NAME]", "Set the active gateway")
    p.add_argument("name", nargs="?")
    p = leaf(gws, "list", "openshell gateway list [OPTIONS]", "List registered gateways")
    if versions.gateway_list_output_flag(v):
        p.add_argument("-o", "--output", choices=["table", "yaml", "json"], default="table")
    p = leaf(gws, "remove", "openshell gateway remove [OPTIONS] [NAME]", "Remove a gateway registration")
    p.add_argument("name", nargs="?")
    p = leaf(gws, "info", "openshell gateway info [OPTIONS]", "Show local gateway metadata")
    p.add_argument("--name", dest="info_name")
    if versions.has_gateway_lifecycle(v):
        for name in ("start", "stop", "destroy"):
            p = leaf(gws, name, f"openshell gateway {name} [OPTIONS]", f"{name.title()} the cluster gateway")
            p.add_argument("--name")

    sb = cmds.add_parser("sandbox", help="Manage sandboxes", usage_line="openshell sandbox <COMMAND>")
    sbs = sb.add_subparsers(dest="sb_command", required=True, parser_class=ClapParser)
    p = leaf(sbs, "create", "openshell sandbox create [OPTIONS] [-- <COMMAND>...]", "Create a sandbox")
    p.add_argument("--name")
    p.add_argument("--from", dest="image")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--policy")
    p.add_argument("--provider", action="append", default=[])
    p.add_argument("--no-tty", action="store_true")
    p.add_argument("--tty", action="store_true")
    p.add_argument("--no-keep", action="store_true")
    p.add_argument("--cpu")
    p.add_argument("--memory")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p = leaf(sbs, "get", "openshell sandbox get [OPTIONS] [NAME]", "Show a sandbox")
    p.add_argument("name", nargs="?")
    p.add_argument("--policy-only", action="store_true")
    p = leaf(sbs, "list", "openshell sandbox list [OPTIONS]", "List sandboxes")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--ids", action="store_true")
    p.add_argument("--names", action="store_true")
    p.add_argument("--selector")
    if versions.sandbox_list_output_flag(v):
        p.add_argument("-o", "--output", choices=["table", "yaml", "json"], default="table")
    p = leaf(sbs, "delete", "openshell sandbox delete [OPTIONS] [NAME]...", "Delete sandboxes")
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true")
    if versions.has_sandbox_start_stop(v):
        for verb in ("start", "stop"):
            p = leaf(sbs, verb, f"openshell sandbox {verb} [OPTIONS] <NAME>", f"{verb.title()} a sandbox")
            p.add_argument("name")
    if versions.split_supervisor(v):  # 0.1.x selects the workspace explicitly (#3245); `default` is the only one here
        for sub in ("create", "get", "delete", "start", "stop"):
            sbs.choices[sub].add_argument("--workspace", default="default")
    p = leaf(sbs, "exec", "openshell sandbox exec [OPTIONS] [NAME] -- <COMMAND>...", "Run a command in a sandbox")
    p.add_argument("--name", dest="exec_name")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p = leaf(sbs, "ssh-config", "openshell sandbox ssh-config [OPTIONS] [NAME]", "Print an ssh config entry")
    p.add_argument("name", nargs="?")
    return top


# --- gateway resolution ("Registration files") --------------------------------------------------------------------

class Ctx:
    def __init__(self, args: argparse.Namespace, v: Version) -> None:
        self.args = args
        self.v = v
        self.reg = Registry.from_env()
        self.gateway_flag: str | None = getattr(args, "gateway", None) or os.environ.get("OPENSHELL_GATEWAY") or None
        self.endpoint_flag: str | None = (getattr(args, "gateway_endpoint", None)
                                          or os.environ.get("OPENSHELL_GATEWAY_ENDPOINT") or None)

    def resolve(self) -> tuple[str, str]:
        """(name, endpoint) for an RPC command, or the CLI's fatal errors."""
        if self.endpoint_flag:
            name = self.gateway_flag or next((g.name for g in self.reg.list()
                                              if g.gateway_endpoint == self.endpoint_flag), self.endpoint_flag)
            return name, self.endpoint_flag
        name = self.gateway_flag or self.reg.active()
        if not name:
            term.fail("No active gateway.\nSet one with: openshell gateway select <name>\n"
                      "Or register one with: openshell gateway add <endpoint>")
        meta = self.reg.get(name)
        if meta is None:
            term.fail(f"Unknown gateway '{name}'.\nRegister it first: openshell gateway add <endpoint> --name {name}\n"
                      "Or list available gateways: openshell gateway select")
        return name, self._usable_endpoint(meta)

    def _usable_endpoint(self, meta: GatewayMetadata) -> str:
        if meta.gateway_endpoint.startswith("https://"):
            mtls = self.reg.root / "gateways" / meta.name / "mtls"
            term.fail(f"TLS CA is required for https endpoints or place certs in {mtls}")
        return meta.gateway_endpoint

    def call(self, endpoint: str, name: str, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return rpc.call(endpoint, name, message, self.v)
        except rpc.TransportError as e:
            term.fail("transport error", ["tcp connect error", "tcp connect error", e.leaf])
        except rpc.RpcStatus as e:
            term.fail(str(e))

    def decode(self, msg: dict[str, Any], path: str) -> wire.Sandbox:
        try:
            return wire.decode_sandbox(msg, versions.schema_generation(self.v), path)
        except wire.DecodeError as e:
            term.fail(str(rpc.decode_status(str(e), self.v)))


# --- status / gateway --------------------------------------------------------------------------------

def cmd_status(ctx: Ctx) -> int:
    name = ctx.gateway_flag or ctx.reg.active()
    meta = ctx.reg.get(name) if name else None
    if ctx.endpoint_flag:
        endpoint = ctx.endpoint_flag
        name = name or endpoint
    elif meta is None:
        out(term.cyan_bold("Gateway Status"))
        out()
        out(f"  {term.dimmed('Status:')} No gateway configured.")
        out()
        out(f"Register a gateway with: {term.dimmed('openshell gateway add <endpoint>')}")
        return 0
    else:
        endpoint = ctx._usable_endpoint(meta)
    out(term.cyan_bold("Server Status"))
    out()
    out(f"  {term.dimmed('Gateway:')} {name}")
    out(f"  {term.dimmed('Server:')} {endpoint}")
    try:
        health = rpc.call(endpoint, "Health", {}, ctx.v, timeout=15)
        out(f"  {term.dimmed('Status:')} {term.green('Connected')}")
        out(f"  {term.dimmed('Version:')} {health.get('2:version', '')}")
        return 0
    except (rpc.TransportError, rpc.RpcStatus) as e:
        grpc_error: str = ("transport error" if isinstance(e, rpc.TransportError) else str(e))
    try:
        code, reason = rpc.http_health_status(endpoint)
    except rpc.TransportError as e:
        term.fail("client error (Connect)", ["tcp connect error", e.leaf])
    if 200 <= code < 300:
        out(f"  {term.dimmed('Status:')} {term.yellow('Connected (HTTP)')}")
        out(f"  {term.dimmed('HTTP: ')} {code} {reason}")
    else:
        out(f"  {term.dimmed('Status:')} {term.red('Error')}")
        out(f"  {term.dimmed('HTTP:')} {code} {reason}")
    out(f"  {term.dimmed('gRPC error:')} {grpc_error}")
    return 0


def cmd_gateway_info_live(ctx: Ctx) -> int:
    """0.0.85+: a live probe through GetGatewayInfo (docs/reference/openshell-versions.md). The header is printed
    before the call, as `status` does (unverified), so a down gateway still shows its name."""
    if ctx.args.info_name:
        ctx.gateway_flag = ctx.args.info_name
    name, endpoint = ctx.resolve()
    out(term.cyan_bold("Gateway Info"))
    out()
    out(f"  {term.dimmed('Gateway:')} {name}")
    out(f"  {term.dimmed('Server:')} {endpoint}")
    try:
        info = rpc.call(endpoint, "GetGatewayInfo", {}, ctx.v, timeout=15)
    except rpc.TransportError as e:
        term.fail("transport error", ["tcp connect error", "tcp connect error", e.leaf])
    except rpc.RpcStatus as e:
        if e.code == "Unimplemented":
            term.fail("gateway info is not supported by this gateway version")
        if e.code == "PermissionDenied":
            term.fail(f"gateway info requires admin privileges: {e.message}")
        term.fail(str(e))
    status = {1: "healthy", 2: "degraded", 3: "unhealthy"}.get(int(info.get("1:status", 0)), "unknown")
    out(f"  {term.dimmed('Status:')} {status}")
    out(f"  {term.dimmed('Version:')} {info.get('2:gateway_version', '')}")
    out(f"  {term.dimmed('Compute drivers:')}")
    for d in info.get("3:compute_drivers", []):
        out(f"    {d.get('1:name', '')}")
        out(f"      {term.dimmed('Driver version:')} {(d.get('2:capabilities') or {}).get('2:driver_version', '')}")
    return 0


def cmd_gateway_info(ctx: Ctx) -> int:
    if versions.live_gateway_info(ctx.v):
        return cmd_gateway_info_live(ctx)
    name = ctx.args.info_name or ctx.gateway_flag or ctx.reg.active() or "openshell"
    meta = ctx.reg.get(name)
    if meta is None:
        hint = (f"Deploy a gateway first with: openshell gateway start --name {name}"
                if versions.has_gateway_lifecycle(ctx.v) else
                f"Register it first: openshell gateway add <endpoint> --name {name}")
        term.fail(f"No gateway metadata found for '{name}'.\n  {hint}")
    out(term.cyan_bold("Gateway Info"))
    out()
    out(f"  {term.dimmed('Gateway:')} {meta.name}")
    out(f"  {term.dimmed('Gateway endpoint:')} {meta.gateway_endpoint}")
    if meta.is_remote and meta.remote_host:
        out(f"  {term.dimmed('Remote host:')} {meta.remote_host}")
    elif meta.is_remote:
        out(f"  {term.dimmed('Type:')} External registration")
    if meta.resolved_host:
        out(f"  {term.dimmed('Resolved host:')} {meta.resolved_host}")
    return 0


def cmd_gateway_add(ctx: Ctx) -> int:
    a = ctx.args
    endpoint = a.endpoint if "://" in a.endpoint else f"https://{a.endpoint}"
    from urllib.parse import urlparse

    host = urlparse(endpoint).hostname or endpoint
    name = a.name or ("openshell" if is_loopback(endpoint) else host)
    if ctx.reg.get(name) is not None:
        term.fail(f"Gateway '{name}' already exists.\nRemove it first with: openshell gateway remove {name}\n"
                  "Or choose a different name with: --name <name>")
    if not endpoint.startswith("http://"):
        term.fail("Only plaintext http:// gateways can be registered with the NemoClaw simulator")
    is_remote = False if a.local else (bool(a.remote) or not is_loopback(endpoint))
    meta = GatewayMetadata(name=name, gateway_endpoint=endpoint, is_remote=is_remote, gateway_port=0,
                           remote_host=a.remote, auth_mode="plaintext")
    try:
        rpc.call(endpoint, "Health", {}, ctx.v, timeout=5)
    except (rpc.TransportError, rpc.RpcStatus):
        err(f"{term.yellow('⚠')} Gateway is not reachable at {endpoint}")
    ctx.reg.save(meta)
    ctx.reg.set_active(name)
    err(f"{check()} Gateway '{name}' added and set as active")
    err(f"  Endpoint: {endpoint}")
    err(f"  Type: {meta.type_label}")
    err(f"  Auth: {meta.auth_label}")
    return 0


def _gateway_rows(ctx: Ctx) -> list[tuple[bool, GatewayMetadata]]:
    active = ctx.gateway_flag or ctx.reg.active()
    return [(g.name == active, g) for g in ctx.reg.list()]


def cmd_gateway_list(ctx: Ctx) -> int:
    rows = _gateway_rows(ctx)
    fmt = getattr(ctx.args, "output", "table")
    if fmt in ("json", "yaml"):
        data = [{"active": act, "auth": g.auth_label, "endpoint": g.gateway_endpoint, "name": g.name,
                 "type": g.type_label} for act, g in rows]
        out(_dump(data, fmt))
        return 0
    if not rows:
        out("No gateways found.")
        out()
        out(f"Register a gateway with: {term.dimmed('openshell gateway add <endpoint>')}")
        return 0
    nw = max([4] + [len(g.name) for _, g in rows])
    ew = max([8] + [len(g.gateway_endpoint) for _, g in rows])
    tw = max([4] + [len(g.type_label) for _, g in rows])
    out(f"  {term.bold('NAME'.ljust(nw))}  {term.bold('ENDPOINT'.ljust(ew))}  {term.bold('TYPE'.ljust(tw))}  "
        f"{term.bold('AUTH')}")
    for act, g in rows:
        line = f"{g.name.ljust(nw)}  {g.gateway_endpoint.ljust(ew)}  {g.type_label.ljust(tw)}  {g.auth_label}"
        out(term.green("* " + line) if act else "  " + line)
    return 0


def cmd_gateway_select(ctx: Ctx) -> int:
    name = ctx.args.name
    if not name:
        cmd_gateway_list(ctx)
        err()
        err(f"Select a gateway with: {term.dimmed('openshell gateway select <name>')}")
        return 0
    if ctx.reg.get(name) is None:
        term.fail(f"No gateway metadata found for '{name}'.\nRegister it first with: openshell gateway add "
                  f"<endpoint> --name {name}\nOr list available gateways: openshell gateway select")
    ctx.reg.set_active(name)
    err(f"{check()} Active gateway set to '{name}'")
    env = os.environ.get("OPENSHELL_GATEWAY")
    if env and env != name:
        err(f"{term.yellow('⚠')} OPENSHELL_GATEWAY={env} is set and will override this selection.")
        err(f"  Unset it or run: export OPENSHELL_GATEWAY={name}")
    return 0


def cmd_gateway_remove(ctx: Ctx) -> int:
    name = ctx.args.name or ctx.gateway_flag or ctx.reg.active()
    if not name or not ctx.reg.remove(name):
        term.fail(f"No gateway metadata found for '{name or 'openshell'}'.")
    err(f"{check()} Gateway registration '{name}' removed.")
    return 0


def cmd_gateway_lifecycle(ctx: Ctx) -> int:
    term.fail(f"`openshell gateway {ctx.args.gw_command}` manages the k3s cluster container, which the NemoClaw "
              "simulator does not run; use `nemoclaw-sim cluster up|down`")


# --- sandboxes ------------------------------------------------------------------------------------

def _created(ms: int) -> str:
    if ms <= 0:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _phase(p: str) -> str:
    return PHASE_STYLE.get(p, lambda s: s)(p)


def _dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    import yaml

    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True).rstrip("\n")


def _list(ctx: Ctx, endpoint: str, limit: int = 100, offset: int = 0, selector: dict[str, str] | None = None) -> list[wire.Sandbox]:
    resp = ctx.call(endpoint, "ListSandboxes", {"limit": limit, "offset": offset, "selector": selector or {}})
    return [ctx.decode(m, "ListSandboxesResponse.sandboxes") for m in resp.get("1:sandboxes", [])]


def cmd_sandbox_list(ctx: Ctx) -> int:
    a = ctx.args
    _, endpoint = ctx.resolve()
    selector = dict(kv.split("=", 1) for kv in a.selector.split(",") if "=" in kv) if a.selector else None
    boxes = _list(ctx, endpoint, a.limit, a.offset, selector)
    if a.ids or a.names:
        for s in boxes:
            out(s.id if a.ids else s.name)
        return 0
    fmt = getattr(a, "output", "table")
    if fmt in ("json", "yaml"):
        data = [{"created_at": _created(s.created_at_ms), "current_policy_version": s.current_policy_version,
                 "id": s.id, "labels": s.labels, "name": s.name, "phase": s.phase,
                 "resource_version": s.resource_version} for s in boxes]
        if versions.has_workspaces(ctx.v):  # later releases add `annotations` and `workspace`
            for row, s in zip(data, boxes):
                row.update(annotations={}, workspace=s.workspace)
        out(_dump(data, fmt))
        return 0
    if not boxes:
        out("No sandboxes found.")
        return 0
    w = max([4] + [len(s.name) for s in boxes])
    out(f"{term.bold('NAME'.ljust(w))}  {term.bold('CREATED'.ljust(19))}  {term.bold('PHASE')}")
    for s in boxes:
        out(f"{s.name.ljust(w)}  {_created(s.created_at_ms).ljust(19)}  {_phase(s.phase)}")
    return 0


def _get(ctx: Ctx, endpoint: str, name: str) -> wire.Sandbox:
    resp = ctx.call(endpoint, "GetSandbox", {"name": name})
    return ctx.decode(resp.get("1:sandbox", {}), "SandboxResponse.sandbox")


def cmd_sandbox_get(ctx: Ctx) -> int:
    _workspace_known(ctx)
    gw, endpoint = ctx.resolve()
    name = ctx.args.name
    if not name:
        name = ctx.reg.last_sandbox(gw)
        if not name:
            term.fail("No sandbox name provided and no last-used sandbox.\n"
                      "Specify a sandbox name or connect to one first: nav sandbox connect <name>")
        err(f"→ Using sandbox '{name}' (last used)")
    s = _get(ctx, endpoint, name)
    cfg = ctx.call(endpoint, "GetSandboxConfig", {"name": name})
    ctx.reg.set_last_sandbox(gw, name)
    policy = cfg.get("1:policy", "")
    if ctx.args.policy_only:
        sys.stdout.write(policy)
        return 0
    out(term.cyan_bold("Sandbox:"))
    out()
    out(f"  {term.dimmed('Id:')} {s.id}")
    out(f"  {term.dimmed('Name:')} {s.name}")
    out(f"  {term.dimmed('Phase:')} {_phase(s.phase)}")
    if versions.has_resource_version(ctx.v):
        out(f"  {term.dimmed('Resource version:')} {s.resource_version}")
    if s.labels:
        out(f"  {term.dimmed('Labels:')}")
        for k in sorted(s.labels):
            out(f"    {k}: {s.labels[k]}")
    out(f"  {term.dimmed('Policy source:')} {cfg.get('3:source', 'sandbox')}")
    if cfg.get("2:revision", 0) > 0:
        out(f"  {term.dimmed('Revision:')} {cfg['2:revision']}")
    out()
    out(term.cyan_bold("Policy:"))
    out()
    for line in policy.rstrip("\n").splitlines():
        out(f"  {line}" if line else "")
    return 0


def cmd_sandbox_create(ctx: Ctx) -> int:
    _workspace_known(ctx)
    a = ctx.args
    gw, endpoint = ctx.resolve()
    labels = dict(kv.split("=", 1) for kv in a.label if "=" in kv)
    resp = ctx.call(endpoint, "CreateSandbox", {"name": a.name, "image": a.image, "labels": labels})
    s = ctx.decode(resp.get("1:sandbox", {}), "SandboxResponse.sandbox")
    ctx.reg.set_last_sandbox(gw, s.name)
    out()
    out(f"{term.cyan_bold('Created sandbox:')} {term.bold(s.name)}")
    out()
    err(f"  {term.dimmed('Image:')} {a.image or 'default'}")
    err("  Waiting for sandbox to become ready...")
    deadline = time.monotonic() + float(os.environ.get("OPENSHELL_SANDBOX_READY_TIMEOUT", "180"))
    while True:
        s = _get(ctx, endpoint, s.name)
        if s.phase == "Ready":
            break
        if s.phase == "Error":
            term.fail(f"sandbox '{s.name}' failed to become ready (phase: Error)")
        if time.monotonic() > deadline:
            term.fail(f"timed out waiting for sandbox '{s.name}' to become ready (phase: {s.phase})")
        time.sleep(0.25)
    err(f"{check()} Sandbox '{s.name}' is ready")
    cmd = [c for c in a.cmd if c != "--"] if a.cmd else []
    if cmd:
        return _exec(ctx, endpoint, s.name, cmd)
    return 0


def cmd_sandbox_delete(ctx: Ctx) -> int:
    _workspace_known(ctx)
    a = ctx.args
    _, endpoint = ctx.resolve()
    names = list(a.names)
    if a.all:
        names = [s.name for s in _list(ctx, endpoint, limit=10_000)]
        if not names:
            out("No sandboxes to delete.")
            return 0
    if not names:
        term.clap_error("the following required arguments were not provided:\n  <NAME>...",
                        "openshell sandbox delete [OPTIONS] [NAME]...")
    for name in names:
        try:
            rpc.call(endpoint, "DeleteSandbox", {"name": name}, ctx.v)
            out(f"{check()} Deleted sandbox {name}")
        except rpc.TransportError as e:
            term.fail("transport error", ["tcp connect error", "tcp connect error", e.leaf])
        except rpc.RpcStatus as e:
            if e.code == "NotFound":
                out(f"{term.yellow('!')} Sandbox {name} not found")
            else:
                term.fail(str(e))
    return 0


def _workspace_known(ctx: Ctx) -> None:
    ws = getattr(ctx.args, "workspace", "default")
    if ws != "default":
        term.fail(f"workspace '{ws}' not found")


def cmd_sandbox_stop(ctx: Ctx) -> int:
    """Stop through the gateway: the sandbox becomes `Stopped` (a bare `docker stop` makes it `Error`)."""
    _workspace_known(ctx)
    _, endpoint = ctx.resolve()
    s = ctx.decode(ctx.call(endpoint, "StopSandbox", {"name": ctx.args.name}).get("1:sandbox", {}), "SandboxResponse.sandbox")
    out(f"{check()} Stopped sandbox {s.name}")
    return 0


def cmd_sandbox_start(ctx: Ctx) -> int:
    """Start a `Stopped` sandbox and wait until it is Ready (0.0.x refuses an `Error` one)."""
    _workspace_known(ctx)
    _, endpoint = ctx.resolve()
    s = ctx.decode(ctx.call(endpoint, "StartSandbox", {"name": ctx.args.name}).get("1:sandbox", {}), "SandboxResponse.sandbox")
    deadline = time.monotonic() + float(os.environ.get("OPENSHELL_SANDBOX_READY_TIMEOUT", "180"))
    while s.phase != "Ready":
        if s.phase == "Error" or time.monotonic() > deadline:
            term.fail(f"sandbox '{s.name}' failed to become ready (phase: {s.phase})")
        time.sleep(0.25)
        s = _get(ctx, endpoint, s.name)
    out(f"{check()} Started sandbox {s.name}")
    return 0


def _exec(ctx: Ctx, endpoint: str, name: str, cmd: list[str]) -> int:
    resp = ctx.call(endpoint, "ExecSandbox", {"name": name, "command": cmd})
    sys.stdout.write(resp.get("2:stdout", ""))
    sys.stdout.flush()
    sys.stderr.write(resp.get("3:stderr", ""))
    return int(resp.get("1:exit_code", 1))


def cmd_sandbox_exec(ctx: Ctx) -> int:
    a = ctx.args
    rest = list(a.rest)
    name = a.exec_name
    if rest and rest[0] != "--" and not name:
        name = rest.pop(0)
    if rest and rest[0] == "--":
        rest.pop(0)
    if not name or not rest:
        term.clap_error("the following required arguments were not provided:\n  <COMMAND>...",
                        "openshell sandbox exec [OPTIONS] [NAME] -- <COMMAND>...")
    _, endpoint = ctx.resolve()
    return _exec(ctx, endpoint, name, rest)


def cmd_sandbox_ssh_config(ctx: Ctx) -> int:
    name = ctx.args.name or "sandbox"
    gw = ctx.gateway_flag or ctx.reg.active() or "openshell"
    exe = os.path.abspath(sys.argv[0]) if sys.argv and os.path.isabs(sys.argv[0]) else "openshell"
    out(f"Host openshell-{name}")
    for line in ("User sandbox", "StrictHostKeyChecking no", "UserKnownHostsFile /dev/null",
                 "GlobalKnownHostsFile /dev/null", "LogLevel ERROR", "ServerAliveInterval 15", "ServerAliveCountMax 3",
                 f"ProxyCommand {exe} ssh-proxy --gateway-name {gw} --name {name}"):
        out(f"    {line}")
    return 0


DISPATCH = {
    ("status", None): cmd_status,
    ("gateway", "add"): cmd_gateway_add,
    ("gateway", "select"): cmd_gateway_select,
    ("gateway", "list"): cmd_gateway_list,
    ("gateway", "remove"): cmd_gateway_remove,
    ("gateway", "info"): cmd_gateway_info,
    ("gateway", "start"): cmd_gateway_lifecycle,
    ("gateway", "stop"): cmd_gateway_lifecycle,
    ("gateway", "destroy"): cmd_gateway_lifecycle,
    ("sandbox", "create"): cmd_sandbox_create,
    ("sandbox", "get"): cmd_sandbox_get,
    ("sandbox", "list"): cmd_sandbox_list,
    ("sandbox", "delete"): cmd_sandbox_delete,
    ("sandbox", "start"): cmd_sandbox_start,
    ("sandbox", "stop"): cmd_sandbox_stop,
    ("sandbox", "exec"): cmd_sandbox_exec,
    ("sandbox", "ssh-config"): cmd_sandbox_ssh_config,
}


def _leaf_parser(top: ClapParser, args: argparse.Namespace) -> ClapParser:
    """The parser of the subcommand that was chosen, so errors print its usage line."""
    parser = top
    for dest in ("command", "gw_command", "sb_command"):
        name = getattr(args, dest, None)
        if not name:
            continue
        for action in parser._subparsers._group_actions if parser._subparsers else []:  # type: ignore[union-attr]
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                parser = action.choices[name]
    return parser


def main(argv: list[str] | None = None) -> int:
    v = versions.current_version()
    top = build_parser(v)
    argv = sys.argv[1:] if argv is None else argv
    args, extras = top.parse_known_args(argv)
    reject_extras(_leaf_parser(top, args), extras)
    sub = getattr(args, "gw_command", None) or getattr(args, "sb_command", None)
    fn = DISPATCH[(args.command, sub)]
    try:
        return fn(Ctx(args, v))
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BrokenPipeError:
        raise SystemExit(1)
