"""A TCP proxy that injects network faults between aiokeg and an S3 server.

Each accepted connection gets one *plan*, drawn from a seeded RNG (so a run
is reproducible) or forced by the test. Plans act at the TCP level:

- ``pass``: forward both ways untouched;
- ``latency``: hold the request ``delay`` seconds, then forward;
- ``reset_request``: forward part of the request, then reset (RST);
- ``reset_response``: forward the request, part of the response, then reset;
- ``truncate``: forward part of the response, then close cleanly (FIN);
- ``error500`` / ``error503``: answer ``500 InternalError`` / ``503 SlowDown``
  without contacting the server;
- ``stall``: forward the request, then send nothing for ``stall`` seconds.

moto answers ``Connection: close``, so one connection carries one request.
Everything runs in daemon threads; nothing touches the test's event loop.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

PLANS = (
    "pass",
    "latency",
    "reset_request",
    "reset_response",
    "truncate",
    "error500",
    "error503",
    "stall",
)

_ERRORS = {
    "error500": (500, "Internal Server Error", "InternalError"),
    "error503": (503, "Slow Down", "SlowDown"),
}


def _rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target``, with faults on some connections.

    Args:
        target: ``(host, port)`` of the real server.
        fault_rate: probability that a connection gets a fault plan.
        seed: RNG seed for reproducible runs.
        kinds: the fault plans to draw from.
        delay: seconds of added latency (``latency`` plan, and every
            connection when ``always_delay`` is set).
        stall: seconds a ``stall`` plan stays silent.
    """

    def __init__(
        self,
        target: tuple[str, int],
        *,
        fault_rate: float = 0.0,
        seed: int = 0,
        kinds: tuple[str, ...] = PLANS[1:],
        delay: float = 0.05,
        stall: float = 5.0,
    ) -> None:
        self.target = target
        self.fault_rate = fault_rate
        self.kinds = kinds
        self.delay = delay
        self.stall = stall
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.forced: list[str] = []
        self.predicate: Callable[[bytes], bool] | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(5)

    def force(self, *plans: str) -> None:
        """Give the next connections these plans, in order."""
        with self._lock:
            self.forced.extend(plans)

    @property
    def faults(self) -> int:
        """Connections that got a fault plan so far."""
        return sum(n for plan, n in self.counts.items() if plan != "pass")

    def _plan(self, head: bytes) -> str:
        with self._lock:
            if self.predicate is not None and not self.predicate(head):
                plan = "pass"
            elif self.forced:
                plan = self.forced.pop(0)
            elif self.rng.random() < self.fault_rate:
                plan = self.rng.choice(self.kinds)
            else:
                plan = "pass"
            self.counts[plan] += 1
            return plan

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        opened: list[socket.socket] = [client]
        try:
            self._serve(client, opened)
        finally:
            for sock in opened:
                with contextlib.suppress(OSError):
                    sock.close()

    def _connect(self, opened: list[socket.socket]) -> socket.socket:
        server = socket.create_connection(self.target)
        opened.append(server)
        return server

    def _serve(self, client: socket.socket, opened: list[socket.socket]) -> None:
        try:
            head = client.recv(65536)
            if not head:
                client.close()
                return
            plan = self._plan(head)
            if plan in _ERRORS:
                self._answer_error(client, head, *_ERRORS[plan])
                return
            if plan == "reset_request":
                # Part of the request reaches the server, then both sides are reset.
                server = self._connect(opened)
                server.sendall(head[: max(1, len(head) // 2)])
                _rst(server)
                _rst(client)
                return
            if plan == "latency":
                time.sleep(self.delay)
            server = self._connect(opened)
            server.sendall(head)
            upstream = threading.Thread(target=self._pipe, args=(client, server, None), daemon=True)
            upstream.start()
            if plan == "stall":
                time.sleep(self.stall)
                _rst(client)
                _rst(server)
                return
            limit = None
            if plan in ("reset_response", "truncate"):
                # Cut inside the status line and headers for reset_response.
                limit = self.rng.randint(1, 100) if plan == "reset_response" else 200
            self._pipe(server, client, limit, rst=plan == "reset_response")
        except OSError:
            _rst(client)

    def _pipe(
        self, src: socket.socket, dst: socket.socket, limit: int | None, rst: bool = False
    ) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: limit - sent])
                    if rst:
                        _rst(dst)
                        _rst(src)
                    else:
                        dst.shutdown(socket.SHUT_WR)
                        dst.close()
                        src.close()
                    return
                dst.sendall(data)
                sent += len(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            _rst(dst)
            _rst(src)

    def _answer_error(
        self, client: socket.socket, head: bytes, status: int, reason: str, code: str
    ) -> None:
        # Drain the request body so the client is not reset while sending it.
        header, _, body = head.partition(b"\r\n\r\n")
        length = 0
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        # With "Expect: 100-continue" the body is not sent until we say so: answer now.
        remaining = 0 if b"100-continue" in header.lower() else length - len(body)
        client.settimeout(10)
        with contextlib.suppress(OSError):
            while remaining > 0:
                chunk = client.recv(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            "<Message>injected by the fault proxy</Message></Error>"
        ).encode()
        response = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode() + payload
        with contextlib.suppress(OSError):
            client.sendall(response)
            client.shutdown(socket.SHUT_WR)
        client.close()
