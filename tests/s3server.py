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

import base64
import contextlib
import dataclasses
import hashlib
import io
import re
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
        garbage: answer with bytes that are not HTTP, then close the connection.
        drop_headers: request headers to remove before moto sees them
            (``("Range",)``: a server that ignores ranges; ``("If-Match",)``:
            one that ignores preconditions).
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
    garbage: bool = False
    drop_headers: tuple[str, ...] = ()
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
        #: Answer like an encrypting server: every ETag is an opaque token
        #: (32 hex digits, consistent for one stored object, not an MD5).
        #: ``"announced"`` adds ``x-amz-server-side-encryption: aws:kms`` as
        #: AWS does for SSE-KMS; ``"silent"`` says nothing (as some
        #: S3-compatible servers do). ``None``: moto's own MD5 ETags.
        self.opaque_etags: str | None = None
        #: Reject a body whose ``Content-MD5`` does not match with 400 BadDigest,
        #: before storing it, as AWS and Ceph RGW do (moto checks nothing).
        self.check_md5 = False
        self._real_etags: dict[str, str] = {}

    def reset(self) -> None:
        with self.lock:
            self.opaque_etags = None
            self.check_md5 = False
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
            if self.check_md5 and environ.get("HTTP_CONTENT_MD5"):
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)
                digest = base64.b64encode(hashlib.md5(body).digest()).decode()
                if digest != environ["HTTP_CONTENT_MD5"]:
                    fault = Fault(op=op, status=400, code="BadDigest")
            if self.opaque_etags:
                self._etags_to_real(environ, op)
                start_response = self._opaque_start(start_response)
            if fault is not None:
                for header in fault.drop_headers:
                    environ.pop("HTTP_" + header.upper().replace("-", "_"), None)
            if fault is not None and fault.garbage:
                if environ.get("CONTENT_LENGTH"):
                    environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
                _garbage(environ)
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
            if self.opaque_etags and op in _XML_WITH_ETAGS:
                result = [_ETAG_XML.sub(self._opaque_xml, b"".join(_consumed(result)))]
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

    # -- opaque ETags --------------------------------------------------------------
    def _opaque(self, real: str) -> str:
        """The opaque token standing for moto's ETag ``real`` (quotes kept)."""
        bare = real.strip('"')
        digest, dash, parts = bare.partition("-")
        token = hashlib.md5(b"opaque|" + digest.encode()).hexdigest() + dash + parts
        with self.lock:
            self._real_etags[token] = bare
        return real.replace(bare, token)

    def _real(self, value: str) -> str:
        """moto's ETag for an opaque token; an unknown value never matches."""
        if value.strip() == "*":
            return value
        bare = value.strip().strip('"')
        with self.lock:
            return f'"{self._real_etags.get(bare, "0" * 32)}"'

    def _opaque_xml(self, match: re.Match[bytes]) -> bytes:
        token = self._opaque(match.group(3).decode()).encode()
        return _rebuild(match, token)

    def _real_xml(self, match: re.Match[bytes]) -> bytes:
        return _rebuild(match, self._real(match.group(3).decode()).strip('"').encode())

    def _etags_to_real(self, environ: Environ, op: str) -> None:
        for header in ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_X_AMZ_COPY_SOURCE_IF_MATCH"):
            if header in environ:
                environ[header] = self._real(environ[header])
        if op == "CompleteMultipartUpload":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = _ETAG_XML.sub(self._real_xml, environ["wsgi.input"].read(length))
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))

    def _opaque_start(self, start_response: StartResponse) -> StartResponse:
        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            headers = [
                (name, self._opaque(value) if name.lower() == "etag" else value)
                for name, value in headers
            ]
            if self.opaque_etags == "announced":
                headers.append(("x-amz-server-side-encryption", "aws:kms"))
            return start_response(status, headers, *args)

        return start

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


#: Responses whose XML body carries ETags (rewritten when ETags are opaque).
_XML_WITH_ETAGS = {
    "CompleteMultipartUpload",
    "ListObjects",
    "ListParts",
    "CopyObject",
    "UploadPartCopy",
}
_ETAG_XML = re.compile(
    rb"(<ETag>)(&quot;|&#34;|\")?([0-9a-fA-F]{32}(?:-\d+)?)(&quot;|&#34;|\")?(</ETag>)"
)


def _rebuild(match: re.Match[bytes], etag: bytes) -> bytes:
    """An ``<ETag>`` element of ``match`` holding ``etag`` instead, quoted as it was."""
    return (
        match.group(1) + (match.group(2) or b"") + etag + (match.group(4) or b"") + match.group(5)
    )


def _consumed(result: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from result
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


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


def _garbage(environ: Environ) -> None:
    """Answer with bytes that are not HTTP, close, then stop handling the request."""
    sock = environ["werkzeug.socket"]
    with contextlib.suppress(OSError):
        sock.sendall(b"\x16\x03\x01 this is not an HTTP response\r\n\r\n")
        sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("injected: not HTTP")


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
