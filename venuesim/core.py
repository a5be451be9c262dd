"""The HTTP plumbing every simulator shares: routing, JSON, request log, fault injection."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("venuesim")


class SimReply(Exception):  # noqa: N818 - a reply, not an error
    """Raised (errors) or returned (answers with headers) by a route: ``status``, a JSON
    ``body`` and extra headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}
        super().__init__(f"{status} {body}")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as exc:
            raise SimReply(400, {"error": "invalid json"}) from exc

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Fault:
    """One injected fault: ``kind`` applies to the next ``count`` requests matching ``path``."""

    # "timeout" (handled, answered late), "drop" (handled, connection closed unanswered),
    # "lost" (connection closed before the venue handled it), "late" (handled only ``delay``
    # seconds after it arrived, as a busy venue does after the client gave up; answered then),
    # "5xx", "rate_limit", "reject", "token_expired"; "none" lets the request through untouched
    # (a place holder in a scripted sequence of faults, e.g. a seeded soak)
    kind: str
    path: str = ""
    method: str = ""
    count: int = 1
    delay: float = 1.5
    message: str = ""


Route = Callable[[Request], Any]


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


def now_ms() -> int:
    """The wall clock in integer milliseconds, as venues stamp their answers."""
    return int(time.time() * 1000)


def hmac_sha256(secret: str, text: str) -> bytes:
    """The raw HMAC-SHA256 of ``text`` keyed with ``secret`` (venues send it hex or base64)."""
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()


def order_rules(
    tick: str, step: str, min_qty: str, minimum: str, *, minimum_key: str = "min_notional"
) -> dict[str, Decimal]:
    """An instrument's order rules: price tick, quantity step, minimum quantity and the minimum
    order value, kept under ``minimum_key``."""
    return {"tick": dec(tick), "step": dec(step), "min_qty": dec(min_qty), minimum_key: dec(minimum)}


def net_fill(
    before: Decimal, signed_qty: Decimal, price: Decimal, entry: Decimal | None
) -> tuple[Decimal, Decimal | None, Decimal | None]:
    """Net a futures fill of ``signed_qty`` (negative sells) at ``price`` into a one-way
    position ``before`` whose average entry is ``entry`` (None if unknown: taken as ``price``).

    Returns (position after, entry after, realized PnL). Adding to the position (or opening it)
    averages the entry and realizes nothing (PnL None); reducing it realizes
    (price - entry) x the closed quantity, signed by the position's side, per unit of size;
    flipping it through zero restarts the entry at ``price``. The entry after is ``entry``
    itself when it does not change (None stays None).
    """
    qty = abs(signed_qty)
    after = before + signed_qty
    current = price if entry is None else entry
    if before == 0 or (before > 0) == (signed_qty > 0):
        return after, (current * abs(before) + price * qty) / (abs(before) + qty), None
    pnl = (price - current) * min(qty, abs(before)) * (1 if before > 0 else -1)
    if after != 0 and (after > 0) != (before > 0):
        entry = price
    return after, entry, pnl


class OrderFailure(Exception):  # noqa: N818 - a per-order venue answer, like SimReply
    """One order (or cancel) refused with the venue's own error ``code`` and ``message``."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}")


def fmt(value: Decimal | None) -> str:
    """Decimal as a plain string without exponent (venues never send 1E+1)."""
    if value is None:
        return "0"
    text = format(value.normalize(), "f")
    return text


def scale(value: Decimal) -> int:
    """Digits after the decimal point of ``value`` once normalized (0.010 -> 2, 10 -> 0; 0 for NaN/inf)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class SimServer:
    """Base class: subclasses register routes in ``routes()`` and answer faults their own way."""

    name = "sim"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        #: Seconds every answer waits before it leaves (a distant venue's round trip; the
        #: benchmarks set 0.05). The request is recorded on arrival, before the wait.
        self.latency = 0.0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[tuple[str, str], Route] = self.routes()

    # --- to override ------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        raise NotImplementedError

    def fault_reply(self, fault: Fault, request: Request) -> SimReply:
        """The venue's own answer for an injected "5xx", "rate_limit" or "reject"."""
        raise NotImplementedError

    # --- fault injection --------------------------------------------------------------
    def inject(
        self,
        kind: str,
        path: str = "",
        *,
        method: str = "",
        count: int = 1,
        delay: float = 1.5,
        message: str = "",
    ) -> Fault:
        fault = Fault(kind=kind, path=path, method=method.upper(), count=count, delay=delay, message=message)
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.count > 0
                    and request.path.startswith(fault.path)
                    and fault.method in ("", request.method)
                ):
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def seen(self, path: str, method: str = "") -> list[Request]:
        """Requests received on ``path`` (prefix), optionally with one HTTP method."""
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path) and method.upper() in ("", r.method)]

    # --- dispatch ---------------------------------------------------------------------
    def handle(self, request: Request) -> tuple[int, Any, dict[str, str], float, bool]:
        """Returns (status, body, headers, delay before answering, drop connection)."""
        with self.lock:
            self.requests.append(request)
        fault = self._take_fault(request)
        if fault is not None and fault.kind == "none":
            fault = None
        route = self._routes.get((request.method, request.path))
        if fault is not None and fault.kind == "lost":
            return 0, None, {}, 0.0, True
        if fault is not None and fault.kind == "late":
            # The venue's queue: the request waits, then is handled as usual (the client may
            # long have timed out and looked for the order in vain meanwhile).
            time.sleep(fault.delay)
        if fault is not None and fault.kind not in ("timeout", "drop", "late"):
            reply = self.fault_reply(fault, request)
            return reply.status, reply.body, reply.headers, 0.0, False
        if route is None:
            log.warning("%s: no route for %s %s", self.name, request.method, request.path)
            return 404, {"error": f"no route {request.method} {request.path}"}, {}, 0.0, False
        try:
            status, body, headers = 200, route(request), {}
            if isinstance(body, SimReply):
                status, body, headers = body.status, body.body, body.headers
        except SimReply as reply:
            status, body, headers = reply.status, reply.body, reply.headers
        except Exception:  # a simulator bug must show, not hang the client
            log.exception("%s: route %s %s failed", self.name, request.method, request.path)
            status, body, headers = 500, {"error": "simulator error"}, {}
        if fault is not None and fault.kind == "timeout":
            return status, body, headers, fault.delay, False
        if fault is not None and fault.kind == "drop":
            return status, body, headers, 0.0, True
        return status, body, headers, 0.0, False

    # --- lifecycle --------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; returns the base URL."""
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s: " + format, sim.name, *args)

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    raw_query=parts.query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                status, payload, headers, delay, drop = sim.handle(request)
                delay += sim.latency
                if delay:
                    time.sleep(delay)
                if drop:
                    self.close_connection = True
                    return
                data = payload if isinstance(payload, bytes) else json.dumps(payload, default=str).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = _serve  # noqa: N815 - stdlib naming

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-sim",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        if isinstance(host, bytes | bytearray):  # typeshed allows a bytes host; an AF_INET server has str
            host = host.decode()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def run_from_command_line(factory: Callable[[], SimServer], default_port: int) -> None:
    """``python -m venuesim.<venue> --port N``: serve in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=f"Local {factory.__name__} venue simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s")
    sim = factory()
    url = sim.start(args.host, args.port)
    print(f"{sim.name} simulator listening on {url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sim.stop()
