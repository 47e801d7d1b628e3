"""Small asyncio helpers: shielded cleanup, awaitable context managers, callbacks."""

from __future__ import annotations

import asyncio
import inspect
import io
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["OpenFile", "call_progress", "gather_all", "read_from", "run_shielded", "write_to"]

T = TypeVar("T")


async def run_shielded(aw: Awaitable[T]) -> T:
    """Run ``aw`` to the end even if the caller is cancelled meanwhile.

    Cleanup (aborting an upload, removing a temporary file) must not be cut
    short by the cancellation that triggered it. The cancellation is
    re-raised once the cleanup has finished, so the caller still sees it.
    """
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


class _AsyncClosable(Protocol):
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


F = TypeVar("F", bound=_AsyncClosable)


class OpenFile(Generic[F]):
    """What ``storage.open()`` returns: awaitable *and* an async context manager.

    ``f = await storage.open(key, "rb")`` gives the file (close it yourself);
    ``async with storage.open(key, "rb") as f:`` closes it on exit and, for
    writers, aborts instead of committing when the block raises.
    """

    __slots__ = ("_coro", "_file")

    def __init__(self, coro: Coroutine[Any, Any, F]) -> None:
        self._coro = coro
        self._file: F | None = None

    def __await__(self) -> Generator[Any, None, F]:
        return self._coro.__await__()

    async def __aenter__(self) -> F:
        self._file = await self._coro
        return self._file

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._file is not None
        return await self._file.__aexit__(exc_type, exc, tb)


async def gather_all(aws: Iterable[Awaitable[Any]]) -> None:
    """Run awaitables as tasks owned here; if one fails, cancel the others and wait for them.

    Like ``asyncio.TaskGroup`` (which needs Python 3.11): no task outlives the call.
    """
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def call_progress(callback: Callable[[T], Awaitable[None] | None] | None, value: T) -> None:
    """Call a progress callback that may be sync or a coroutine function."""
    if callback is None:
        return
    result = callback(value)
    if inspect.isawaitable(result):
        await result


async def read_from(file_obj: Any, size: int) -> bytes:
    """Read up to ``size`` bytes from a sync or async binary file object.

    Async objects (aiofiles, an aiokeg reader) are awaited; in-memory
    ``BytesIO`` is read directly; any other sync file is read in a worker
    thread so the event loop never blocks on disk.
    """
    if isinstance(file_obj, io.BytesIO):
        return file_obj.read(size)
    read = file_obj.read
    if inspect.iscoroutinefunction(read):
        data = await read(size)
    else:
        data = await asyncio.to_thread(read, size)
        if inspect.isawaitable(data):
            data = await data
    if isinstance(data, str):
        raise TypeError("the file object returned str: open it in binary mode ('rb')")
    return bytes(data) if not isinstance(data, bytes) else data


async def write_to(file_obj: Any, data: bytes) -> None:
    """Write ``data`` to a sync or async binary file object without blocking the loop."""
    if isinstance(file_obj, io.BytesIO):
        file_obj.write(data)
        return
    write = file_obj.write
    if inspect.iscoroutinefunction(write):
        await write(data)
    else:
        result = await asyncio.to_thread(write, data)
        if inspect.isawaitable(result):
            await result
