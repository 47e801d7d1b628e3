"""The S3 reader: adaptive concurrent prefetch of ranges, pinned to one version, resumable."""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import io
import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import botocore.exceptions

from .._errors import ObjectChangedError, TransferError
from .._files import AsyncReader
from .._validate import TransferSettings
from ._client import S3Context
from ._errors import error_code

__all__ = ["INITIAL_WINDOW", "OPEN_WINDOW", "AsyncS3Reader", "Chunks", "fetch_range", "open_object"]

#: Bytes fetched by the first read after a seek; the window quadruples from
#: here while reading stays sequential.
INITIAL_WINDOW = 128 * 1024
#: Bytes the GET sent at open asks for (at most ``chunk_size``): objects up
#: to this size are opened and read with one request.
OPEN_WINDOW = 1024 * 1024
#: Largest piece read from a response body at once.
_READ_STEP = 1024 * 1024


class Chunks:
    """The bytes of one range, kept as the pieces the connection delivered.

    Joining them into one buffer would copy every byte once more (and touch
    fresh pages): readers slice what they need straight from the pieces.
    """

    __slots__ = ("parts", "size", "starts")

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.starts = list(itertools.accumulate(map(len, parts), initial=0))
        self.size = self.starts.pop()

    def __len__(self) -> int:
        return self.size

    def pieces(self, lo: int, hi: int) -> Iterator[bytes | memoryview]:
        """Bytes ``lo..hi-1`` as consecutive pieces: whole parts as they are, else views."""
        i = bisect.bisect_right(self.starts, lo) - 1
        while lo < hi:
            part, base = self.parts[i], self.starts[i]
            a, b = lo - base, min(len(part), hi - base)
            yield part if a == 0 and b == len(part) else memoryview(part)[a:b]
            lo = base + b
            i += 1


async def fetch_range(
    s3: S3Context,
    key: str,
    etag: str,
    size: int,
    start: int,
    end: int,
    max_attempts: int,
) -> Chunks:
    """GET bytes ``start..end-1`` of the version ``etag`` of ``key``.

    Every request carries ``If-Match``: a changed object raises
    :class:`ObjectChangedError` instead of mixing versions. A body cut short
    is resumed from the byte reached with a new ranged GET (still pinned),
    within ``max_attempts`` tries in all.
    """
    parts: list[bytes] = []
    want = end - start
    got = 0

    async def attempt(client: Any) -> Chunks:
        nonlocal got
        response = await client.get_object(
            Bucket=s3.bucket,
            Key=key,
            Range=f"bytes={start + got}-{end - 1}",
            IfMatch=f'"{etag}"',
        )
        body = response["Body"]
        # The data path's body hands over what arrived without copying it.
        readany = getattr(body, "readany", None)
        try:  # the body is released on every path, checks included
            _check_total(response, size, s3.bucket, key)
            _check_range(response, start + got, end - 1, s3.bucket, key)
            while got < want:
                if readany is not None:
                    chunk = await readany()
                else:
                    chunk = await body.read(min(want - got, _READ_STEP))
                if not chunk:
                    raise ConnectionResetError(
                        f"body ended at byte {start + got} of range {start}-{end - 1}"
                    )
                if got + len(chunk) > want:
                    chunk = chunk[: want - got]
                parts.append(chunk)
                got += len(chunk)
        finally:
            body.close()
        return Chunks(parts)

    return await s3.run("GetObject", key, attempt, max_attempts=max_attempts, data=True)


async def open_object(
    s3: S3Context, key: str, window: int, max_attempts: int
) -> tuple[dict[str, Any], bytes]:
    """GET the first ``window`` bytes of ``key``: its metadata (as a HEAD gives) and bytes.

    The ETag in the answer is the version every later GET is pinned to. An
    empty object (which has no byte range to serve: 416) is looked up with a
    HEAD instead.
    """

    async def attempt(client: Any) -> tuple[dict[str, Any], bytes]:
        try:
            response: dict[str, Any] = await client.get_object(
                Bucket=s3.bucket, Key=key, Range=f"bytes=0-{window - 1}"
            )
        except botocore.exceptions.ClientError as exc:
            code, status = error_code(exc)
            if code != "InvalidRange" and status != 416:
                raise
            head: dict[str, Any] = await client.head_object(Bucket=s3.bucket, Key=key)
            return head, b""
        body = response["Body"]
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        total = str(response.get("ContentRange") or "").rpartition("/")[2]
        response["ContentLength"] = int(total) if total.isdigit() else len(data)
        if len(data) != min(window, response["ContentLength"]):
            raise ConnectionResetError(f"body ended at byte {len(data)} of the first range")
        return response, data

    return await s3.run("GetObject", key, attempt, max_attempts=max_attempts, data=True)


def _check_total(response: dict[str, Any], size: int, bucket: str, key: str) -> None:
    # If-Match already pins the version; a different total length would mean
    # a server that ignores If-Match, so refuse to mix rather than trust it.
    content_range = str(response.get("ContentRange") or "")
    total = content_range.rpartition("/")[2]
    if total.isdigit() and int(total) != size:
        raise ObjectChangedError(
            f"s3://{bucket}/{key} changed while it was being read (size {size} became "
            f"{total}); open it again to read the new version",
            bucket=bucket,
            key=key,
            operation="GetObject",
        )


def _check_range(response: dict[str, Any], first: int, last: int, bucket: str, key: str) -> None:
    """The answer is a 206 for exactly bytes ``first..last`` (what was asked)."""
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 206)
    content_range = str(response.get("ContentRange") or "")
    span = content_range.removeprefix("bytes ").partition("/")[0]
    if status == 206 and span == f"{first}-{last}":
        return
    raise TransferError(
        f"GetObject of s3://{bucket}/{key} asked for bytes {first}-{last} and the server "
        f"answered status {status} with Content-Range {content_range or '(none)'!r}; "
        "the endpoint does not honour ranged reads (check endpoint_url, or a proxy "
        "that rewrites requests)",
        bucket=bucket,
        key=key,
        operation="GetObject",
    )


@dataclasses.dataclass
class _Segment:
    start: int
    end: int
    task: asyncio.Future[Chunks]


class AsyncS3Reader(AsyncReader):
    """Reads one S3 object; get it from ``storage.open(key, "rb")``.

    Opening sends one ``GetObject`` for the first ``OPEN_WINDOW`` (1 MiB) of
    the object: its answer carries what a ``HeadObject`` would (``size``,
    ``etag``, ``content_type``, ``last_modified``, ``metadata``) and the first
    bytes, so a small object is opened and read with a single request. Every
    later GET is pinned to that ETag (``If-Match``). If the object changes mid-read,
    :class:`ObjectChangedError` is raised: bytes from two versions are never
    returned. A connection dropped mid-body resumes from the byte reached.

    **Prefetch.** The first read after opening or seeking fetches what it
    needs (at least 128 KiB). While reads stay sequential the read-ahead
    window quadruples with each range consumed, up to ``max_concurrency``
    ranged GETs of ``chunk_size`` in flight ahead of the position, like an
    operating system's read-ahead.
    A seek outside the window cancels what it no longer needs and starts
    small again, so random access fetches little more than it reads.
    Objects up to ``chunk_size`` are fetched with one GET. Memory stays
    within about ``(max_concurrency + 1) × chunk_size``.
    """

    def __init__(
        self,
        s3: S3Context,
        key: str,
        *,
        size: int,
        etag: str,
        content_type: str | None,
        last_modified: datetime,
        metadata: dict[str, str],
        settings: TransferSettings,
        headers: Mapping[str, str] | None = None,
        first: bytes = b"",
    ) -> None:
        super().__init__(key, size, etag, content_type, last_modified)
        self.metadata = metadata
        #: Stored headers other than Content-Type, for :attr:`extra_args`.
        self.headers: dict[str, str] = dict(headers or {})
        self._s3 = s3
        self._settings = settings
        self._segments: deque[_Segment] = deque()
        self._next = 0  # where the next prefetch starts
        self._window = INITIAL_WINDOW
        self._max_window = settings.max_concurrency * settings.chunk_size
        self._last_end = 0  # where the previous read ended: sequential detection
        self.iter_chunk_size = min(settings.chunk_size, 8 * 1024 * 1024)
        if first:
            # The bytes that came with the answer at open: the first segment.
            done: asyncio.Future[Chunks] = asyncio.get_running_loop().create_future()
            done.set_result(Chunks([first]))
            self._segments.append(_Segment(0, len(first), done))
            self._next = len(first)
            self._window = max(INITIAL_WINDOW, len(first))

    @property
    def extra_args(self) -> dict[str, Any]:
        """Content-Type, Content-Encoding, Cache-Control, Content-Disposition and metadata."""
        args: dict[str, Any] = {**super().extra_args, **self.headers}
        if self.metadata:
            args["Metadata"] = dict(self.metadata)
        return args

    async def _read_at(self, offset: int, size: int) -> bytes:
        sequential = offset == self._last_end
        end = offset + size
        await self._drop_before(offset)
        if not self._segments or offset >= self._segments[-1].end:
            await self._drop_all()
            self._next = offset
            if not sequential:
                self._window = INITIAL_WINDOW
        # Segments are copied out as they are consumed and then released, so a
        # large read holds its result plus the window, never every segment at once.
        out: io.BytesIO | None = None
        first: bytes | memoryview | None = None
        pos = offset
        while pos < end:
            # A sequential reader reads ahead by the window; a random read fetches
            # what it asked for, at least INITIAL_WINDOW, and nothing after it.
            self._prefetch(
                pos, pos + self._window if sequential else offset + INITIAL_WINDOW, end, sequential
            )
            segment = self._segments[0]
            task = segment.task
            try:
                # Shielded: cancelling this read must not cancel a prefetch the
                # reader still owns (close() cancels those). A segment that has
                # arrived is taken as it is (most reads, when streaming).
                data = task.result() if task.done() else await asyncio.shield(task)
            except Exception:
                await self._drop_all()
                raise
            lo, hi = pos - segment.start, min(segment.end, end) - segment.start
            for piece in data.pieces(lo, hi):
                if out is None and pos == offset and pos + len(piece) >= end:
                    first = piece  # the whole read comes from one piece
                else:
                    if out is None:
                        out = io.BytesIO()
                    out.write(piece)
                pos += len(piece)
            if pos >= segment.end:
                self._segments.popleft()
                if sequential:
                    self._window = min(self._window * 4, self._max_window)
        self._last_end = end
        if sequential:
            self._prefetch(end, end + self._window, end, True)
        # BytesIO hands over its buffer without a copy; a view is copied once,
        # and a whole piece is returned as it is.
        if out is not None:
            return out.getvalue()
        assert first is not None
        return first if isinstance(first, bytes) else first.tobytes()

    def _prefetch(self, pos: int, ahead: int, end: int, sequential: bool) -> None:
        """Start GETs until ``[pos, max(ahead, end))`` is covered or the bound is hit.

        Sequential reading splits the window in two so that one range arrives
        while the next is in flight; a random read takes what it needs in one
        GET (up to ``chunk_size``), since each request has a fixed cost.
        """
        size, chunk = self.size, self._settings.chunk_size
        target = min(max(ahead, end), size)
        if size <= chunk:
            target = size  # small objects: one GET for the whole object
        wanted = (target - pos) // 2 if sequential else target - pos
        piece = min(chunk, max(INITIAL_WINDOW, wanted))
        while self._next < target and len(self._segments) < self._settings.max_concurrency:
            start = self._next
            stop = size if size <= chunk else min(size, start + piece)
            task: asyncio.Future[Chunks] = asyncio.ensure_future(
                fetch_range(
                    self._s3, self.name, self.etag, size, start, stop, self._settings.max_attempts
                )
            )
            self._segments.append(_Segment(start, stop, task))
            self._next = stop

    async def _drop_before(self, offset: int) -> None:
        stale: list[_Segment] = []
        while self._segments and self._segments[0].end <= offset:
            stale.append(self._segments.popleft())
        if self._segments and self._segments[0].start > offset:
            stale.extend(self._segments)
            self._segments.clear()
        await _cancel(stale)

    async def _drop_all(self) -> None:
        stale = list(self._segments)
        self._segments.clear()
        await _cancel(stale)

    async def _aclose(self) -> None:
        await self._drop_all()


async def _cancel(segments: list[_Segment]) -> None:
    for segment in segments:
        segment.task.cancel()
    if segments:
        await asyncio.gather(*(s.task for s in segments), return_exceptions=True)
