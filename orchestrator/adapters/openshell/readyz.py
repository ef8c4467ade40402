"""The version a running gateway serves on its health listener's `/readyz`
(docs/reference/openshell-versions.md, "How the running version is read").

One HTTP GET on loopback with `httpx`, imported only when a probe runs (a refused run never
pays for it). The deadline of each attempt is `deadlines.READYZ`; a refused or reset connection
(a gateway process that is restarting) is tried again a few times, declared with `tenacity`;
a timeout is not (the deadline has been spent), nor is an answer (its word is taken).

Each way of not getting a version is its own error type, so a caller can tell "nothing
listens" from "it hangs" from "it is not ready"; `binary.served_version` turns all of them into
"no version", which the doctor words as "the version the running gateway serves could not be
read".
"""

from __future__ import annotations

import json

from .. import deadlines
from .cli import parse_version

READYZ_PATH = "/readyz"
CONNECT_ATTEMPTS = 3
"""Attempts when the connection is refused or reset, 0.05 s then 0.1 s apart."""
MAX_BODY = 1 << 16
"""Bytes of the answer read at most (a health reply is a few dozen)."""


class ReadyzError(Exception):
    """No version from `/readyz`; `str()` says why in one sentence fragment."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"{url}: {problem}")
        self.url = url
        self.problem = problem


class ReadyzRefused(ReadyzError):
    """Nothing accepted the connection (or it was reset before an answer)."""


class ReadyzTimeout(ReadyzError):
    """The listener accepted the connection but did not answer within the deadline."""


class ReadyzBadStatus(ReadyzError):
    """It answered with a status other than 200 (503: not ready); its version is not taken."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(url, f"answered HTTP {status}, not 200")
        self.status = status


class ReadyzUnreadable(ReadyzError):
    """A 200 whose body is not a JSON object with a version string."""


def readyz_url(port: int) -> str:
    return f"http://127.0.0.1:{port}{READYZ_PATH}"


def read_readyz(port: int, timeout: float | None = None) -> str:
    """The version `/readyz` on 127.0.0.1:`port` reports; a `ReadyzError` subtype otherwise.
    No proxy or other environment setting applies (loopback, `trust_env=False`)."""
    import httpx
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    url = readyz_url(port)
    seconds = deadlines.READYZ if timeout is None else timeout

    def get(client: httpx.Client) -> tuple[int, bytes]:
        try:
            with client.stream("GET", url) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) >= MAX_BODY:
                        break
                return response.status_code, body
        except httpx.TimeoutException:
            raise ReadyzTimeout(url, f"no answer within {seconds:g} s") from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise ReadyzRefused(url, f"connection refused or reset ({exc or type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ReadyzUnreadable(url, f"{type(exc).__name__}: {exc}") from None

    retrying = Retrying(stop=stop_after_attempt(CONNECT_ATTEMPTS), wait=wait_exponential(multiplier=0.05, max=0.1),
                        retry=retry_if_exception_type(ReadyzRefused), reraise=True)
    # Plain HTTP on loopback: no TLS, so no certificate store is loaded (0.1-0.7 s of a start).
    with httpx.Client(trust_env=False, verify=False, timeout=httpx.Timeout(seconds)) as client:
        status, body = retrying(get, client)
    if status != 200:
        raise ReadyzBadStatus(url, status)
    try:
        doc = json.loads(body[:MAX_BODY])
    except ValueError:
        raise ReadyzUnreadable(url, "the answer is not JSON") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    parsed = parse_version(version) if isinstance(version, str) else None
    if parsed is None:
        raise ReadyzUnreadable(url, "the answer carries no version")
    return parsed
