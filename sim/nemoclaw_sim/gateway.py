"""`openshell-gateway`: the host-process gateway server at the launcher's version
(docs/reference/openshell-cli-and-gateway.md, "Gateway server").

Run as `python -m nemoclaw_sim.gateway` from an installed launcher. The main port speaks a
JSON stand-in for gRPC (`POST /openshell.v1.OpenShell/<Rpc>`, content-type `application/grpc…`);
every other HTTP request there is a 404 like the real multiplexer. `/health`, `/healthz` and
`/readyz` exist only on `--health-port`.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import signal
import sqlite3
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from . import db, term, versions, wire
from .clapargs import ClapParser, reject_extras
from .versions import Version

RPC_PREFIX = "/openshell.v1.OpenShell/"
FAULTS_ENV = "NEMOCLAW_SIM_FAULTS"
DEPLOYMENT_ENV = "NEMOCLAW_SIM_DEPLOYMENT"
DEFAULT_POLICY = """version: 1
filesystem_policy:
  include_workdir: true
  read_only:
  - /usr
  - /lib
  - /etc
  read_write:
  - /sandbox
  - /tmp
landlock:
  compatibility: best_effort
process:
  run_as_user: sandbox
  run_as_group: sandbox
"""


class RpcError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Logger:
    """tracing fmt on stdout, ANSI unless NO_COLOR is non-empty ("Start-up log")."""

    def __init__(self) -> None:
        self.ansi = not os.environ.get("NO_COLOR")
        self.lock = threading.Lock()

    def __call__(self, level: str, target: str, message: str, **fields: object) -> None:
        line = term.log_line(level, target, message, fields, ansi=self.ansi)
        with self.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


# --- arguments -----------------------------------------------------------------------------------

def parse_args(argv: list[str], version: Version) -> argparse.Namespace:
    env = os.environ
    p = ClapParser(prog="openshell-gateway", usage_line="openshell-gateway [OPTIONS] [COMMAND]",
                   description="OpenShell gateway server (NemoClaw simulator stand-in)")
    p.add_argument("-V", "--version", action="version", version=f"openshell-gateway {version}")
    p.add_argument("--config", default=env.get("OPENSHELL_GATEWAY_CONFIG"))
    p.add_argument("--bind-address", default=env.get("OPENSHELL_BIND_ADDRESS", "127.0.0.1"))
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--health-port", type=int, default=0)
    p.add_argument("--metrics-port", type=int, default=0)
    p.add_argument("--log-level", default=env.get("OPENSHELL_LOG_LEVEL", "info"))
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-client-ca")
    p.add_argument("--db-url", default=env.get("OPENSHELL_DB_URL"))
    if versions.split_supervisor(version):  # 0.1.x: --compute-driver (the 0.0.x spelling kept as an alias)
        p.add_argument("--compute-driver", "--drivers", "--driver", dest="drivers",
                       default=env.get("OPENSHELL_COMPUTE_DRIVER") or env.get("OPENSHELL_DRIVERS"))
    else:
        p.add_argument("--drivers", "--driver", dest="drivers", default=env.get("OPENSHELL_DRIVERS"))
    p.add_argument("--disable-tls", action="store_true")
    p.add_argument("--server-san", action="append", default=[])
    if version.at_least("0.0.47"):
        p.add_argument("--enable-mtls-auth", action="store_true")
    if not version.at_least("0.0.43"):
        p.add_argument("--disable-gateway-auth", action="store_true")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("generate-certs", help="Generate a PKI bundle for mTLS")
    for tok in argv:  # clap reports an unknown flag before a stray value
        if tok == "--":
            break
        if tok.startswith("-") and tok.split("=", 1)[0] not in p._option_string_actions:
            reject_extras(p, [tok.split("=", 1)[0]])
    args, extras = p.parse_known_args(argv)
    reject_extras(p, extras)
    if args.port is None:
        args.port = int(env.get("OPENSHELL_SERVER_PORT") or versions.default_server_port(version))
    return args


AUTH_REQUIRED = ("configuration error: no authentication is configured; configure OIDC, mTLS user or operator "
                 "authentication, or gateway JWTs (for trusted local development only, set "
                 "allow_unauthenticated_users = true under [openshell.gateway.auth])")
"""0.1.6+ (#4821). The quoted remedy is upstream's release note; the sentence around it is ours."""


def _allows_unauthenticated(config: str | None) -> bool:
    """`allow_unauthenticated_users = true` under `[openshell.gateway.auth]` of the --config TOML."""
    if not config:
        return False
    import tomllib

    try:
        doc = tomllib.loads(Path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        term.fail(f"configuration error: cannot read gateway config {config}: {e}")
    auth = doc.get("openshell", {}).get("gateway", {}).get("auth", {})
    return auth.get("allow_unauthenticated_users") is True


def default_db_url() -> str:
    """0.0.44+: `sqlite:$XDG_STATE_HOME/openshell/gateway/openshell.db`, directory created 0700."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    d = Path(state) / "openshell" / "gateway"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite:{d / 'openshell.db'}"


# --- faults (simulator only) -----------------------------------------------------------------------

def take_fault(op: str) -> RpcError | None:
    """A fault injected by `nemoclaw-sim fault set`; one-shot unless sticky."""
    path = os.environ.get(FAULTS_ENV)
    if not path:
        return None
    try:
        faults = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    fault = faults.get(op)
    if not isinstance(fault, dict):
        return None
    if not fault.get("sticky"):
        del faults[op]
        tmp = Path(path + ".tmp")
        tmp.write_text(json.dumps(faults, indent=2))
        os.replace(tmp, path)
    return RpcError(fault.get("code", "Internal"), fault.get("message", "injected fault"))


# --- the service -------------------------------------------------------------------------------------

class Service:
    """The OpenShell RPCs this stand-in implements, over the object store and Docker driver."""

    def __init__(self, version: Version, conn: sqlite3.Connection, driver: Any, log: Logger) -> None:
        self.version = version
        self.generation = versions.schema_generation(version)
        self.with_rv = versions.has_resource_version(version)
        self.workspaces = versions.has_workspaces(version)
        self.honor_workdir = versions.honors_workdir(version)
        self.split = versions.split_supervisor(version)
        self.store = db.ObjectStore(conn)
        self.driver = driver
        self.log = log
        self.lock = threading.RLock()
        self.creating: set[str] = set()
        self.rpcs: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "Health": self.health,
            "ListSandboxes": self.list_sandboxes,
            "GetSandbox": self.get_sandbox,
            "CreateSandbox": self.create_sandbox,
            "DeleteSandbox": self.delete_sandbox,
            "StartSandbox": self.start_sandbox,
            "StopSandbox": self.stop_sandbox,
            "GetSandboxConfig": self.get_sandbox_config,
            "ExecSandbox": self.exec_sandbox,
            "GetGatewayInfo": self.gateway_info,
        }

    def check_client(self, rpc: str, client_version: str | None, req: dict[str, Any]) -> None:
        """Mixed release lines (docs/reference/openshell-versions.md): a 0.0.x request does not parse under 0.1.x
        (`workspace` string → `WorkspaceSelector`); a 0.1.x selector reads as a bogus workspace
        name under 0.0.88+, so nothing is found. Health/GetGatewayInfo are wire-stable."""
        if rpc in ("Health", "GetGatewayInfo") or not client_version:
            return
        try:
            client = Version(client_version)
        except ValueError:
            return
        if client.line == self.version.line:
            return
        if self.split and not versions.split_supervisor(client):
            raise RpcError("Internal", f"failed to decode Protobuf message: {rpc}Request.workspace_scope: "
                                       "unexpected end group tag")
        if versions.split_supervisor(client) and self.workspaces:
            req["__foreign_workspace__"] = True
    # helpers
    def _to_wire(self, obj: db.StoredObject) -> dict[str, Any]:
        p = obj.payload
        s = wire.Sandbox(id=obj.id, name=obj.name, phase=p.get("phase", "Unknown"), created_at_ms=obj.created_at_ms,
                         labels=p.get("labels") or {}, resource_version=obj.resource_version,
                         current_policy_version=p.get("current_policy_version", 1), workspace=p.get("workspace", ""))
        return wire.encode_sandbox(s, self.generation, self.with_rv)

    def _sync(self, obj: db.StoredObject) -> db.StoredObject:
        """Reflect the container's state in the stored phase (the driver's watch loop, on demand)."""
        if obj.id in self.creating or obj.payload.get("phase") == "Deleting":
            return obj
        from .driver import phase_for_state

        status = self.driver.status(obj.payload["container"])
        if status == "running" and obj.payload.get("stop_recorded"):
            obj.payload.pop("stop_recorded")  # started behind the gateway's back: its stop is no longer the last word
            self.store.update(obj)
        phase = phase_for_state(status, bool(obj.payload.get("stop_recorded")))
        if phase == "Ready" and obj.payload.get("supervisor") and self.driver.status(obj.payload["supervisor"]) != "running":
            phase = "Provisioning"  # 0.1.x: a workload without its supervisor companion never becomes Ready
        if phase != obj.payload.get("phase"):
            obj.payload["phase"] = phase
            if status is None:
                obj.payload.update(reason="BackendResourceMissing", message="Sandbox container disappeared")
            self.store.update(obj)
            obj = self.store.get("sandbox", obj.name) or obj
        return obj

    def _find(self, name: str, req: dict[str, Any] | None = None) -> db.StoredObject:
        obj = None if (req or {}).get("__foreign_workspace__") else self.store.get("sandbox", name)
        if obj is None:
            raise RpcError("NotFound", "sandbox not found")
        return obj

    # RPCs
    def health(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"1:status": 1, "2:version": str(self.version)}

    def gateway_info(self, req: dict[str, Any]) -> dict[str, Any]:
        if not versions.has_gateway_info_rpc(self.version):
            raise RpcError("Unimplemented", "")
        caps = {"1:driver_name": "docker", "2:driver_version": self.driver.server_version()}
        return {"1:status": 1, "2:gateway_version": str(self.version),
                "3:compute_drivers": [{"1:name": "docker", "2:capabilities": caps}]}

    def list_sandboxes(self, req: dict[str, Any]) -> dict[str, Any]:
        fault = take_fault("list")
        if fault:
            raise fault
        with self.lock:
            objs = [] if req.get("__foreign_workspace__") else [self._sync(o) for o in self.store.list("sandbox")]
        selector = req.get("selector") or {}
        objs = [o for o in objs if all((o.payload.get("labels") or {}).get(k) == v for k, v in selector.items())]
        offset, limit = int(req.get("offset") or 0), int(req.get("limit") or 100)
        return {"1:sandboxes": [self._to_wire(o) for o in objs[offset:offset + limit]]}

    def get_sandbox(self, req: dict[str, Any]) -> dict[str, Any]:
        fault = take_fault("get")
        if fault:
            raise fault
        with self.lock:
            obj = self._sync(self._find(req.get("name", ""), req))
        return {"1:sandbox": self._to_wire(obj)}

    def create_sandbox(self, req: dict[str, Any]) -> dict[str, Any]:
        fault = take_fault("create")
        if fault:
            raise fault
        name = req.get("name") or f"sandbox-{uuid.uuid4().hex[:6]}"
        image = req.get("image") or "nemoclaw-sim/busybox:latest"
        labels = req.get("labels") or {}
        with self.lock:
            if self.store.get("sandbox", name) is not None:
                raise RpcError("AlreadyExists", f"sandbox '{name}' already exists")
            if not self.driver.image_exists(image):
                raise RpcError("FailedPrecondition", f"sandbox image '{image}' is not available locally")
            sid = str(uuid.uuid4())
            from .driver import container_name
            workspace = "default" if self.workspaces else None
            payload = {"phase": "Provisioning", "image": image, "labels": labels,
                       "container": container_name(name, sid, workspace),
                       "current_policy_version": 1, "policy": DEFAULT_POLICY, "workspace": workspace or ""}
            obj = self.store.insert("sandbox", sid, name, payload)
            self.creating.add(sid)
        threading.Thread(target=self._provision, args=(obj,), daemon=True).start()
        return {"1:sandbox": self._to_wire(obj)}

    def _provision(self, obj: db.StoredObject) -> None:
        try:
            from .images import BASE_IMAGE

            created = self.driver.create(obj.id, obj.name, obj.payload["image"], obj.payload["labels"],
                                         workspace=obj.payload.get("workspace") or None,
                                         honor_workdir=self.honor_workdir, split=self.split, supervisor_image=BASE_IMAGE)
            phase, extra = "Ready", dict(created)
        except Exception as exc:  # noqa: BLE001 - any driver failure is the sandbox's Error
            phase, extra = "Error", {"reason": "ProvisioningFailed", "message": str(exc)}
        with self.lock:
            self.creating.discard(obj.id)
            cur = self.store.get("sandbox", obj.name)
            if cur is not None and cur.id == obj.id:
                cur.payload["phase"] = phase
                cur.payload.update(extra)
                self.store.update(cur)
        self.log("INFO", "openshell_driver_docker", "Sandbox provisioned" if phase == "Ready" else "Sandbox failed",
                 sandbox_id=obj.id, sandbox_name=obj.name, phase=phase)

    def delete_sandbox(self, req: dict[str, Any]) -> dict[str, Any]:
        fault = take_fault("delete")
        if fault:
            raise fault
        with self.lock:
            obj = self._find(req.get("name", ""), req)
            obj.payload["phase"] = "Deleting"
            self.store.update(obj)
        self.driver.remove(obj.payload["container"])
        if obj.payload.get("supervisor"):
            self.driver.remove(obj.payload["supervisor"])
        if obj.payload.get("volume"):
            self.driver.remove_volume(obj.payload["volume"])
        with self.lock:
            self.store.delete(obj.id)
        return {"1:deleted": True}

    def _containers(self, obj: db.StoredObject) -> list[str]:
        """The sandbox's containers in start order: 0.1.x's supervisor companion first, then the workload."""
        return [n for n in (obj.payload.get("supervisor"), obj.payload["container"]) if n]

    def stop_sandbox(self, req: dict[str, Any]) -> dict[str, Any]:
        """Stop the container(s) and record the stop, so the phase is `Stopped` (not `Error`) and
        a gateway restart does not start it again (docs/reference/sandbox-lifecycle.md)."""
        if not versions.has_sandbox_start_stop(self.version):
            raise RpcError("Unimplemented", "")
        fault = take_fault("stop")
        if fault:
            raise fault
        with self.lock:
            obj = self._sync(self._find(req.get("name", ""), req))
            if obj.id in self.creating:
                raise RpcError("FailedPrecondition", f"sandbox must be Ready to stop (current phase: {obj.payload['phase']})")
            obj.payload["stop_recorded"] = True
            obj.payload["phase"] = "Stopping"
            self.store.update(obj)
        for cname in reversed(self._containers(obj)):  # the workload first, its supervisor last
            self.driver.stop(cname)
        with self.lock:
            obj = self._sync(self._find(obj.name))
        self.log("INFO", "openshell_server", "Sandbox stopped", sandbox_id=obj.id, sandbox_name=obj.name)
        return {"1:sandbox": self._to_wire(obj)}

    def start_sandbox(self, req: dict[str, Any]) -> dict[str, Any]:
        """Start a `Stopped` sandbox (0.1.x: the supervisor companion first). 0.0.x refuses an
        `Error` sandbox (NemoClaw #11885); 0.1.0 recovers it (OS#2269)."""
        if not versions.has_sandbox_start_stop(self.version):
            raise RpcError("Unimplemented", "")
        fault = take_fault("start")
        if fault:
            raise fault
        with self.lock:
            obj = self._sync(self._find(req.get("name", ""), req))
            phase = obj.payload.get("phase")
            if phase == "Ready":
                return {"1:sandbox": self._to_wire(obj)}
            if phase != "Stopped" and not (phase == "Error" and versions.starts_error_sandbox(self.version)):
                raise RpcError("FailedPrecondition", f"sandbox must be Stopped to start (current phase: {phase})")
            obj.payload["phase"] = "Starting"
            self.store.update(obj)
        try:
            for cname in self._containers(obj):
                self.driver.start(cname)
        except Exception as exc:  # noqa: BLE001 - a container that cannot start: the sandbox's Error
            with self.lock:
                cur = self._find(obj.name)
                cur.payload.update(phase="Error", reason="StartFailed", message=str(exc))
                cur.payload.pop("stop_recorded", None)
                self.store.update(cur)
            raise RpcError("Internal", f"failed to start sandbox '{obj.name}': {exc}") from None
        with self.lock:
            cur = self._find(obj.name)
            cur.payload.pop("stop_recorded", None)
            cur.payload["phase"] = "Provisioning"
            self.store.update(cur)
            obj = self._sync(cur)
        self.log("INFO", "openshell_server", "Sandbox started", sandbox_id=obj.id, sandbox_name=obj.name)
        return {"1:sandbox": self._to_wire(obj)}

    def get_sandbox_config(self, req: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            obj = self._find(req.get("name", ""), req)
        return {"1:policy": obj.payload.get("policy", DEFAULT_POLICY), "2:revision": 1, "3:source": "sandbox"}

    def exec_sandbox(self, req: dict[str, Any]) -> dict[str, Any]:
        fault = take_fault("exec")
        if fault:
            raise fault
        with self.lock:
            obj = self._sync(self._find(req.get("name", ""), req))
        if obj.payload.get("phase") != "Ready":
            raise RpcError("FailedPrecondition", f"sandbox '{obj.name}' is not ready")
        res = self.driver.exec(obj.payload["container"], list(req.get("command") or ["true"]))
        return {"1:exit_code": res.exit_code, "2:stdout": res.stdout.decode("utf-8", "replace"),
                "3:stderr": res.stderr.decode("utf-8", "replace")}

    # lifecycle
    def resume_all(self) -> None:
        """`docker start` every stored sandbox not Deleting/Error; missing container ⇒ Error ("Restart")."""
        resumed = failed = 0
        for obj in self.store.list("sandbox"):
            if obj.payload.get("phase") in ("Deleting", "Error", "Stopped") or obj.payload.get("stop_recorded"):
                continue
            cname = obj.payload["container"]
            status = self.driver.status(cname)
            if status is None:
                obj.payload.update(phase="Error", reason="BackendResourceMissing",
                                   message="Sandbox container disappeared while the gateway was offline")
                self.store.update(obj)
                failed += 1
                continue
            if status == "running":
                continue
            try:
                if obj.payload.get("supervisor"):
                    self.driver.start(obj.payload["supervisor"])
                self.driver.start(cname)
                obj.payload["phase"] = "Ready"
                self.store.update(obj)
                resumed += 1
                self.log("INFO", "openshell_server", "Resumed sandbox during gateway startup",
                         sandbox_id=obj.id, sandbox_name=obj.name)
            except Exception as exc:  # noqa: BLE001
                obj.payload.update(phase="Error", reason="ResumeFailed", message=str(exc))
                self.store.update(obj)
                failed += 1
        self.log("INFO", "openshell_server", "Sandbox resume sweep complete", resumed=resumed, failed=failed)

    def stop_all(self) -> int:
        """On shutdown the Docker driver stops every managed container it knows ("Start-up log")."""
        names = [n for o in self.store.list("sandbox") for n in (o.payload["container"], o.payload.get("supervisor")) if n]
        running = [n for n in names if self.driver.status(n) == "running"]
        threads = [threading.Thread(target=self.driver.stop, args=(n,)) for n in running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(running)


# --- HTTP -----------------------------------------------------------------------------------------

def _http_date() -> str:
    return email.utils.formatdate(usegmt=True)


class _Handler(BaseHTTPRequestHandler):
    service: Service
    log_fn: Logger

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet access log
        return

    def send_response(self, code: int, message: str | None = None) -> None:
        # hyper sends no Server header.
        self.send_response_only(code, message)
        self.send_header("date", _http_date())

    def _reply(self, code: int, body: bytes = b"", ctype: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        if ctype:
            self.send_header("content-type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._reply(404)

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.startswith(RPC_PREFIX) or not (self.headers.get("content-type") or "").startswith("application/grpc"):
            self._reply(404)
            return
        rpc = self.path[len(RPC_PREFIX):]
        meta = {"date": _http_date(), "content-type": "application/grpc", "x-request-id": str(uuid.uuid4())}
        try:
            fn = self.service.rpcs.get(rpc)
            if fn is None:
                raise RpcError("Unimplemented", "")
            req = json.loads(raw or b"{}").get("message") or {}
            self.service.check_client(rpc, self.headers.get("x-openshell-client-version"), req)
            body = {"message": fn(req)}
        except RpcError as e:
            body = {"status": {"code": e.code, "message": e.message, "metadata": meta}}
        except Exception as e:  # noqa: BLE001 - surface as gRPC Internal like tonic would
            body = {"status": {"code": "Internal", "message": str(e), "metadata": meta}}
        self._reply(200, json.dumps(body).encode(), "application/grpc+json")


class _HealthHandler(BaseHTTPRequestHandler):
    version: str

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def send_response(self, code: int, message: str | None = None) -> None:
        self.send_response_only(code, message)
        self.send_header("date", _http_date())

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path in ("/health", "/healthz"):
            body, ctype, code = b"", None, 200
        elif path == "/readyz":
            body = json.dumps({"status": "healthy", "version": self.version}, separators=(",", ":")).encode()
            ctype, code = "application/json", 200
        else:
            body, ctype, code = b"", None, 404
        self.send_response(code)
        if ctype:
            self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _MuxServer(_Server):
    """The main port: HTTP/2-preface connections go to real gRPC, the rest to the HTTP handler."""

    grpc_backend: Any = None

    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(target=self._route, args=(request, client_address), daemon=True).start()

    def _route(self, request: Any, client_address: Any) -> None:
        from .grpc_server import opens_with_h2_preface

        try:
            if self.grpc_backend is not None and opens_with_h2_preface(request):
                self.grpc_backend.splice(request)
            else:
                self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one broken connection must not stop the server
            pass
        finally:
            self.shutdown_request(request)


# --- main -------------------------------------------------------------------------------------------

def _bind(addr: str, port: int, handler: type[BaseHTTPRequestHandler], cls: type[_Server] = _Server) -> _Server:
    try:
        return cls((addr, port), handler)
    except OSError as e:
        term.fail(f"failed to bind to {addr}:{port}", [f"{e.strerror} (os error {e.errno})"])


def main(argv: list[str] | None = None) -> int:
    version = versions.current_version()
    args = parse_args(sys.argv[1:] if argv is None else argv, version)
    if args.command == "generate-certs":
        term.fail("generate-certs is not supported by the NemoClaw simulator (it serves plaintext HTTP only)")

    if not args.db_url:
        if versions.db_url_required(version):
            term.fail("--db-url is required (or set OPENSHELL_DB_URL)")
        args.db_url = default_db_url()
    if args.tls_cert or args.tls_key:
        term.fail("TLS is not supported by the NemoClaw simulator; run with --disable-tls")
    if not args.disable_tls and not getattr(args, "disable_gateway_auth", False):
        term.fail("--tls-cert is required when TLS is enabled (use --disable-tls to skip)")
    if versions.requires_auth(version) and not args.tls_client_ca and not _allows_unauthenticated(args.config):
        term.fail(AUTH_REQUIRED)

    stop = threading.Event()
    server: list[_Server] = []

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        for s in server:
            threading.Thread(target=s.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log = Logger()
    for level, text in versions.startup_tls_lines(version):
        log(level, "openshell_server::cli", text)
    bind = f"{args.bind_address}:{args.port}"
    log("INFO", "openshell_server::cli", "Starting OpenShell server", bind=bind)

    # Database: connect + migrate. Fatal here means nothing ever listens.
    if not args.db_url.startswith("sqlite:"):
        term.fail(f"execution error: unsupported database URL in the NemoClaw simulator: {args.db_url}")
    try:
        conn = db.connect(db.sqlite_path(args.db_url))
        db.migrate(conn, db.migrations_for(versions.migration_versions(version), versions.legacy_001(version)))
    except db.MigrateError as e:
        term.fail(f"execution error: migration error: {e}")
    except sqlite3.Error as e:
        term.fail(f"execution error: database error: {e}")

    drivers = (args.drivers or "").strip().lower()
    from .driver import DockerDriver

    driver = DockerDriver(deployment=os.environ.get(DEPLOYMENT_ENV) or None)
    if drivers and drivers != "docker":
        term.fail(f"configuration error: the NemoClaw simulator only implements the docker driver (got '{drivers}')")
    if not driver.ping():
        term.fail("configuration error: no compute driver configured and auto-detection found no suitable driver; "
                  "set --drivers or OPENSHELL_DRIVERS to kubernetes, podman, docker, or vm")
    log("INFO", "openshell_server", "Using compute driver", driver="docker")

    service = Service(version, conn, driver, log)
    service.resume_all()

    handler = type("Handler", (_Handler,), {"service": service, "log_fn": log})
    from .grpc_server import GrpcBackend

    backend = GrpcBackend(str(version), versions.has_gateway_info_rpc(version), driver.server_version)
    mux = type("MuxServer", (_MuxServer,), {"grpc_backend": backend})
    main_srv = _bind(args.bind_address, args.port, handler, mux)
    health_srv = None
    if args.health_port:
        health_srv = _bind(args.bind_address, args.health_port, type("HealthHandler", (_HealthHandler,), {"version": str(version)}))
    log("INFO", "openshell_server", "Server listening", address=bind)
    if health_srv:
        log("INFO", "openshell_server", "Health server listening", address=f"{args.bind_address}:{args.health_port}")
        threading.Thread(target=health_srv.serve_forever, daemon=True).start()
    else:
        log("INFO", "openshell_server", "Health server disabled")
    log("INFO", "openshell_server", "Metrics server disabled")
    log("INFO", "openshell_server", "TLS disabled — accepting plaintext connections")

    server.append(main_srv)
    if not stop.is_set():
        main_srv.serve_forever(poll_interval=0.2)
    log("INFO", "openshell_server", "Shutdown signal received; stopping gateway")
    if health_srv:
        health_srv.shutdown()
    main_srv.server_close()
    backend.stop()
    stopped = service.stop_all()
    log("INFO", "openshell_driver_docker", "Stopped Docker sandbox containers during gateway shutdown",
        stopped_containers=stopped)
    conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
