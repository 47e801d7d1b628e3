"""moto's S3 server on an ephemeral port, with a fault-injecting, request-counting layer.

The layer is a WSGI middleware around moto's app: it sees each HTTP request
aiokeg sends, names the S3 operation, records it, counts how many of each are
in flight at once, and can delay it, answer it with an error, damage its body
or cut its response short. Tests use real HTTP end to end; nothing in
botocore or aiobotocore is patched.

Run it alone (for subprocess measurements): ``python tests/s3server.py``
prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

from werkzeug.serving import make_server

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def classify(environ: Environ) -> tuple[str, str | None]:
    """Return ``(operation, key)`` of an S3 request in path style."""
    method = environ["REQUEST_METHOD"]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    path = unquote(environ.get("PATH_INFO", "/")).lstrip("/")
    bucket, _, key = path.partition("/")
    copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
    if not key:
        if method == "GET" and "uploads" in query:
            return "ListMultipartUploads", None
        if method == "GET":
            return "ListObjects", None
        if method == "POST" and "delete" in query:
            return "DeleteObjects", None
        return f"{method}Bucket", None
    if method == "PUT" and "partNumber" in query:
        return ("UploadPartCopy" if copy else "UploadPart"), key
    if method == "PUT":
        return ("CopyObject" if copy else "PutObject"), key
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload", key
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload", key
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload", key
    if method == "DELETE":
        return "DeleteObject", key
    if method == "GET" and "uploadId" in query:
        return "ListParts", key
    if method == "GET":
        return "GetObject", key
    if method == "HEAD":
        return "HeadObject", key
    return method, key


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour.

    Attributes:
        op: S3 operation to affect (``"UploadPart"``, ``"GetObject"``...).
        key: only requests for this key (``None``: any key).
        times: how many matching requests to affect (``-1``: all of them).
        skip: let this many matching requests through first.
        when: extra predicate on the request record.
        delay: seconds to hold the request before passing it on.
        status: answer with this HTTP status and ``code`` instead of moto's.
        code: S3 error code of that answer.
        truncate_after: serve only this many bytes of the response body,
            then drop the connection (Content-Length still promises more).
        corrupt_request: flip one byte of the request body before moto reads it.
        reset: let moto handle the request, then reset the connection instead
            of answering (the client cannot know whether it took effect).
    """

    op: str
    key: str | None = None
    times: int = 1
    skip: int = 0
    when: Callable[[dict[str, Any]], bool] | None = None
    delay: float = 0.0
    status: int | None = None
    code: str = "InternalError"
    truncate_after: int | None = None
    corrupt_request: bool = False
    reset: bool = False
    hits: int = 0

    def matches(self, record: dict[str, Any]) -> bool:
        if record["op"] != self.op or (self.key is not None and record["key"] != self.key):
            return False
        if self.when is not None and not self.when(record):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        return self.times < 0 or self.hits < self.times


class FaultLayer:
    """WSGI middleware: records, counts and perturbs requests to the wrapped app."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.response_bytes: Counter[str] = Counter()

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.requests.clear()
            self.in_flight.clear()
            self.max_in_flight.clear()
            self.response_bytes.clear()

    def add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def ops(self, op: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["op"] == op]

    def _match(self, record: dict[str, Any]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(record):
                    fault.hits += 1
                    return fault
        return None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        op, key = classify(environ)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        record = {
            "op": op,
            "key": key,
            "range": environ.get("HTTP_RANGE"),
            "if_match": environ.get("HTTP_IF_MATCH"),
            "if_none_match": environ.get("HTTP_IF_NONE_MATCH"),
            "part_number": int(query["partNumber"][0]) if "partNumber" in query else None,
            "content_md5": environ.get("HTTP_CONTENT_MD5"),
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
            "start": time.monotonic(),
        }
        with self.lock:
            self.requests.append(record)
            self.in_flight[op] += 1
            self.max_in_flight[op] = max(self.max_in_flight[op], self.in_flight[op])
        fault = self._match(record)
        try:
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.corrupt_request:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = bytearray(environ["wsgi.input"].read(length))
                if body:
                    body[len(body) // 2] ^= 0xFF
                environ["wsgi.input"] = io.BytesIO(bytes(body))
            if fault is not None and fault.status is not None:
                if environ.get("CONTENT_LENGTH"):
                    environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
                payload = (
                    '<?xml version="1.0" encoding="UTF-8"?><Error>'
                    f"<Code>{fault.code}</Code><Message>injected by test</Message></Error>"
                ).encode()
                start_response(
                    f"{fault.status} Injected",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))],
                )
                return [payload]
            result = self.app(environ, start_response)
            if fault is not None and fault.reset:
                _consume(result)
                _reset(environ)
            if fault is not None and fault.truncate_after is not None:
                return self._truncate(result, fault.truncate_after, op, environ)
            return self._count(result, op)
        finally:
            with self.lock:
                self.in_flight[op] -= 1
                record["end"] = time.monotonic()

    def _count(self, result: Iterable[bytes], op: str) -> Iterator[bytes]:
        try:
            for chunk in result:
                with self.lock:
                    self.response_bytes[op] += len(chunk)
                yield chunk
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _truncate(
        self, result: Iterable[bytes], limit: int, op: str, environ: Environ
    ) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in result:
                piece = chunk[: max(limit - sent, 0)]
                if piece:
                    sent += len(piece)
                    with self.lock:
                        self.response_bytes[op] += len(piece)
                    yield piece
                if sent >= limit:
                    break
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        # Headers and `limit` bytes are out; drop the connection so the client
        # sees a body cut short of its Content-Length.
        _reset(environ)


def _consume(result: Iterable[bytes]) -> None:
    for _ in result:
        pass
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _reset(environ: Environ) -> None:
    """Abort the TCP connection with a RST, then stop handling the request."""
    sock = environ["werkzeug.socket"]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("injected: connection reset")


class S3TestServer:
    """moto's S3 app behind :class:`FaultLayer`, served in a thread on 127.0.0.1:0."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        self.layer = FaultLayer(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1",
            0,
            self.layer,
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self.port = self._server.server_address[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> S3TestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


if __name__ == "__main__":
    server = S3TestServer().start()
    print(f"PORT {server.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
