"""Real gRPC on the gateway's main port: `Health` and `GetGatewayInfo` (docs/reference/openshell-versions.md).

Served with the protocol definitions that ship in NVIDIA's Python SDK (`openshell._proto`), so
any gRPC client — the orchestrator's SDK probe included — talks to the stand-in over the wire
exactly as to the real gateway. The real gateway multiplexes gRPC and HTTP on one port; so does
the stand-in: a connection that opens with the HTTP/2 preface is spliced to a grpcio server on
a private loopback port, anything else goes to the HTTP/1.1 handler (the JSON stand-in for
the other RPCs, and the 404s).

Every other RPC of the service answers `Unimplemented`, as an unknown method does upstream.
"""

from __future__ import annotations

import socket
import threading
from concurrent import futures
from typing import Callable

import grpc
from openshell._proto import openshell_pb2, openshell_pb2_grpc

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _Servicer(openshell_pb2_grpc.OpenShellServicer):
    def __init__(self, version: str, has_gateway_info: bool, driver_version: Callable[[], str]) -> None:
        self.version = version
        self.has_gateway_info = has_gateway_info
        self.driver_version = driver_version

    def Health(self, request, context):  # noqa: N802 - gRPC method name
        return openshell_pb2.HealthResponse(status=openshell_pb2.SERVICE_STATUS_HEALTHY, version=self.version)

    def GetGatewayInfo(self, request, context):  # noqa: N802
        if not self.has_gateway_info:  # added in 0.0.85 (#2202)
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "")
        caps = openshell_pb2.ComputeDriverCapabilities(driver_name="docker", driver_version=self.driver_version())
        return openshell_pb2.GetGatewayInfoResponse(
            status=openshell_pb2.SERVICE_STATUS_HEALTHY,
            gateway_version=self.version,
            compute_drivers=[openshell_pb2.ComputeDriverInfo(name="docker", capabilities=caps)],
        )


class GrpcBackend:
    """A grpcio server on 127.0.0.1:<ephemeral>, reached only through `splice()`."""

    def __init__(self, version: str, has_gateway_info: bool, driver_version: Callable[[], str]) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        openshell_pb2_grpc.add_OpenShellServicer_to_server(
            _Servicer(version, has_gateway_info, driver_version), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(0)

    def splice(self, client: socket.socket) -> None:
        """Relay one client connection to the grpcio server until either side closes."""
        upstream = socket.create_connection(("127.0.0.1", self.port))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                    try:
                        s.shutdown(how)
                    except OSError:
                        pass

        t = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        t.start()
        pump(client, upstream)
        t.join()
        upstream.close()


def opens_with_h2_preface(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Peek (without consuming) until the bytes are, or cannot become, the HTTP/2 preface."""
    old = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        while True:
            head = sock.recv(len(H2_PREFACE), socket.MSG_PEEK)
            if not head or not H2_PREFACE.startswith(head):
                return False
            if len(head) == len(H2_PREFACE):
                return True
            threading.Event().wait(0.005)
    except OSError:
        return False
    finally:
        sock.settimeout(old)
