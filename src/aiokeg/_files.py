"""Base classes of the async file objects every backend hands out.

The public behaviour (argument checks, position, iteration, lifecycle, abort
on exception) is written here once; a backend implements a few primitives.
"""

from __future__ import annotations

import abc
import enum
import os
import warnings
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any

from ._aio import run_shielded
from ._errors import ConcurrentUseError

__all__ = ["AsyncReader", "AsyncWriter"]


class _Guard:
    """Refuses a second task while one is inside an operation of a file object."""

    __slots__ = ("_busy", "_kind", "_name")

    def __init__(self, kind: str, name: str) -> None:
        self._busy = False
        self._kind = kind
        self._name = name

    def __enter__(self) -> None:
        if self._busy:
            raise ConcurrentUseError(
                f"another task is already using this {self._kind} of {self._name!r}; a file "
                "object serves one task at a time: give each task its own, or use a lock",
                key=self._name,
                operation="use",
            )
        self._busy = True

    def __exit__(self, *exc: object) -> None:
        self._busy = False


class AsyncReader(abc.ABC):
    """An open object for reading, with the API of an ``aiofiles`` binary file.

    Attributes:
        name: the key.
        size: the object's size in bytes, as seen at open.
        etag: the version read (every read is pinned to it where the backend can).
        content_type: the stored content type, if any.
        last_modified: timezone-aware modification time.
    """

    #: Default chunk size of ``async for chunk in f``.
    iter_chunk_size: int = 1024 * 1024

    def __init__(
        self,
        name: str,
        size: int,
        etag: str,
        content_type: str | None,
        last_modified: datetime,
    ) -> None:
        self.name = name
        self.size = size
        self.etag = etag
        self.content_type = content_type
        self.last_modified = last_modified
        self._pos = 0
        self._closed = False
        self._guard = _Guard("reader", name)

    @property
    def extra_args(self) -> dict[str, Any]:
        """The ``extra_args`` that give a copy this object's stored headers and metadata.

        Bulk copies pass them to the destination's writer, so Content-Type
        (and on S3 Content-Encoding, Cache-Control, Content-Disposition and
        user metadata) travel with the bytes.
        """
        return {"ContentType": self.content_type} if self.content_type else {}

    # -- primitives ---------------------------------------------------------
    @abc.abstractmethod
    async def _read_at(self, offset: int, size: int) -> bytes:
        """Return exactly ``size`` bytes at ``offset`` (the range lies within the object)."""

    async def _aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the backend's resources (prefetches, file handles)."""

    # -- public API ---------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"I/O operation on closed reader for {self.name!r}")

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left when ``size`` < 0).

        Returns ``b""`` at the end of the object.
        """
        self._check_open()
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"size must be an int, got {type(size).__name__}")
        with self._guard:
            remaining = max(self.size - self._pos, 0)
            n = remaining if size < 0 else min(size, remaining)
            if n == 0:
                return b""
            data = await self._read_at(self._pos, n)
            self._pos += len(data)
            return data

    async def readinto(self, buffer: Any) -> int:
        """Read into a writable bytes-like object; return the number of bytes read."""
        self._check_open()
        view = memoryview(buffer).cast("B")
        if view.readonly:
            raise TypeError("readinto() needs a writable buffer such as a bytearray")
        data = await self.read(len(view))
        view[: len(data)] = data
        return len(data)

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the position; seeking past the end is allowed (reads give ``b""``)."""
        self._check_open()
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(
                f"seek() offset must be an int (a byte position), got {type(offset).__name__}"
            )
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"whence must be 0, 1 or 2 (os.SEEK_SET/CUR/END), got {whence!r}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = target
        return target

    async def tell(self) -> int:
        """Return the current position."""
        self._check_open()
        return self._pos

    def seekable(self) -> bool:
        """Readers can always seek."""
        return True

    def readable(self) -> bool:
        """Readers are readable."""
        return True

    def writable(self) -> bool:
        """Readers are not writable."""
        return False

    async def iter_chunks(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield the rest of the object in ``chunk_size`` pieces (the last may be short)."""
        chunk_size = chunk_size or self.iter_chunk_size
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        while True:
            chunk = await self.read(chunk_size)
            if not chunk:
                return
            yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.iter_chunks()

    async def close(self) -> None:
        """Cancel prefetches and release connections; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        await run_shielded(self._aclose())

    async def __aenter__(self) -> AsyncReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pos={self._pos}"
        return f"<{type(self).__name__} {self.name!r} size={self.size} {state}>"


class WriterState(enum.Enum):
    """Lifecycle of a writer."""

    OPEN = "open"
    CLOSED = "closed"
    ABORTED = "aborted"
    FAILED = "failed"


class AsyncWriter(abc.ABC):
    """An open object for writing, with the API of an ``aiofiles`` binary file.

    Nothing becomes visible until :meth:`close` succeeds. An exception or a
    cancellation inside ``async with`` calls :meth:`abort` instead, shielded
    from the cancellation: no partial object is ever published. A writer
    garbage-collected while open emits ``ResourceWarning`` and never commits.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._state = WriterState.OPEN
        self._written = 0
        self._guard = _Guard("writer", name)
        #: Set by a backend once the publishing request has succeeded.
        self._published = False

    # -- primitives ---------------------------------------------------------
    @abc.abstractmethod
    async def _write(self, data: memoryview) -> None:
        """Accept ``data`` (non-empty); may wait for back-pressure."""

    @abc.abstractmethod
    async def _commit(self) -> None:
        """Make everything written visible under ``name``, atomically."""

    @abc.abstractmethod
    async def _abort(self) -> None:
        """Discard everything written; leave nothing behind. Must be idempotent."""

    def _leak_cleanup(self) -> None:  # noqa: B027 - optional hook
        """Called when the writer is garbage-collected while open (sync, best effort)."""

    # -- public API ---------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the writer was closed, aborted or failed."""
        return self._state is not WriterState.OPEN

    @property
    def state(self) -> str:
        """``"open"``, ``"closed"`` (committed), ``"aborted"`` or ``"failed"``."""
        return self._state.value

    def _check_open(self) -> None:
        if self._state is not WriterState.OPEN:
            raise ValueError(f"write to a {self._state.value} writer for {self.name!r}")

    async def write(self, data: Any) -> int:
        """Write a bytes-like object; return its length.

        Waits when the writer has ``max_concurrency`` parts in flight, so
        memory stays bounded however fast the caller writes.
        """
        self._check_open()
        if isinstance(data, str):
            raise TypeError("write() takes bytes-like objects, not str: encode it first")
        view = memoryview(data).cast("B")
        if view.nbytes:
            with self._guard:
                try:
                    await self._write(view)
                except BaseException:
                    await self._fail()
                    raise
                self._written += view.nbytes
        return view.nbytes

    async def tell(self) -> int:
        """Return the number of bytes written so far."""
        return self._written

    def seekable(self) -> bool:
        """Writers are append-only streams."""
        return False

    def readable(self) -> bool:
        """Writers are not readable."""
        return False

    def writable(self) -> bool:
        """True while the writer is open."""
        return self._state is WriterState.OPEN

    async def flush(self) -> None:  # noqa: B027 - a no-op on purpose
        """Do nothing: parts are sent when full; data becomes visible on :meth:`close`."""

    async def close(self) -> None:
        """Send what is buffered, wait for every part and publish the object.

        Idempotent. If publishing fails, the upload is aborted (nothing is
        published, nothing left behind) and the error is raised.

        Cancelled: before the publishing request is sent, nothing is
        published. Once it is sent, ``close()`` waits for its answer
        (shielded, bounded by the timeouts and ``max_attempts``) and then
        raises ``CancelledError``; :attr:`state` then says ``"closed"`` if
        the object was published. Either way nothing is published after
        ``close()`` has returned or raised.
        """
        if self._state is WriterState.CLOSED or self._state is WriterState.ABORTED:
            return
        if self._state is WriterState.FAILED:
            raise ValueError(f"writer for {self.name!r} failed earlier; nothing was published")
        with self._guard:
            try:
                await self._commit()
            except BaseException:
                if self._published:
                    self._state = WriterState.CLOSED
                else:
                    await self._fail()
                raise
            self._state = WriterState.CLOSED

    async def abort(self) -> None:
        """Discard the upload: cancel parts in flight, publish nothing, leave nothing."""
        if self._state is not WriterState.OPEN:
            return
        self._state = WriterState.ABORTED
        await run_shielded(self._abort())

    async def _fail(self) -> None:
        if self._state is WriterState.OPEN:
            self._state = WriterState.FAILED
            await run_shielded(self._abort())

    async def __aenter__(self) -> AsyncWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            if self._state is WriterState.OPEN:
                self._state = WriterState.ABORTED
                await run_shielded(self._abort())
            return
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "_state", None) is WriterState.OPEN:
            self._state = WriterState.ABORTED
            warnings.warn(
                f"{type(self).__name__} for {self.name!r} was garbage-collected while open; "
                "nothing was published (use 'async with' or await close())",
                ResourceWarning,
                stacklevel=2,
            )
            self._leak_cleanup()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self._state.value} written={self._written}>"
