"""The backend base class: a few primitives, and everything else written once on top."""

from __future__ import annotations

import abc
import asyncio
import builtins
import mimetypes
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, overload

from ._aio import OpenFile, call_progress, gather_all, read_from, run_shielded, write_to
from ._errors import ObjectNotFoundError, StorageClosedError, StorageError, TransferError
from ._files import AsyncReader, AsyncWriter
from ._localfs import AtomicLocalFile
from ._types import FileMode, ListEntry, ObjectInfo, ProgressCallback, ShareLinkOperation
from ._validate import TransferSettings, check_key, check_prefix, expiry_seconds

__all__ = ["AsyncStorage"]

ReadMode = Literal["rb", "r", FileMode.read]
WriteMode = Literal["wb", "w", "xb", "x"]


class AsyncStorage(abc.ABC):
    """What every backend offers (S3, local files, memory).

    A backend implements the primitives (``_open_reader``, ``_open_writer``,
    ``_iter_pages``, ``_delete``, ``_copy``, ``_stat`` and optionally
    ``_link``); ``get``, ``put``, ``upload``, ``download``, ``exists``,
    ``delete_many``, ``list`` and ``iter_list`` are written here once.

    Use it as ``async with storage:`` or call :meth:`aclose` when done.
    """

    def __init__(
        self,
        name: str,
        *,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
    ) -> None:
        self.name = name
        self.settings = TransferSettings().override(chunk_size, max_concurrency, max_attempts)
        self._closed = False
        #: Writers still open: aclose() aborts them (nothing half-written survives).
        self._writers: weakref.WeakSet[AsyncWriter] = weakref.WeakSet()

    # -- primitives ---------------------------------------------------------
    @abc.abstractmethod
    async def _open_reader(self, key: str, settings: TransferSettings) -> AsyncReader:
        """Open ``key`` for reading; raise ``ObjectNotFoundError`` if it is absent."""

    @abc.abstractmethod
    async def _open_writer(
        self,
        key: str,
        *,
        exclusive: bool,
        extra_args: Mapping[str, Any],
        settings: TransferSettings,
        size_hint: int | None,
    ) -> AsyncWriter:
        """Open ``key`` for writing (``exclusive``: fail if it exists)."""

    @abc.abstractmethod
    def _iter_pages(self, prefix: str) -> AsyncIterator[list[ListEntry]]:
        """Yield pages of entries whose keys start with ``prefix``, in key order."""

    @abc.abstractmethod
    async def _delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""

    @abc.abstractmethod
    async def _copy(self, key: str, new_key: str) -> None:
        """Copy ``key`` to ``new_key`` without passing through the caller."""

    @abc.abstractmethod
    async def _stat(self, key: str) -> ObjectInfo:
        """Describe ``key``; raise ``ObjectNotFoundError`` if it is absent."""

    async def _link(
        self,
        key: str,
        operation: ShareLinkOperation,
        expires_in: int,
        output_path: str | None,
        content_type: str | None,
        content_encoding: str | None,
    ) -> str:
        raise NotImplementedError(
            f"{type(self).__name__} cannot make shareable links: only object stores that sign "
            "URLs (AsyncS3Storage) can; serve the file from your application instead"
        )

    async def _aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the backend's clients and connections."""

    # -- lifecycle ----------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError(
                f"{type(self).__name__} {self.name!r} is closed: create a new one",
                operation="use",
            )

    async def aclose(self) -> None:
        """Close clients and connections; calling it again does nothing.

        Writers still open are aborted first: nothing they wrote is
        published and no incomplete upload is left behind.
        """
        if self._closed:
            return
        self._closed = True
        await run_shielded(self._abort_writers())
        await run_shielded(self._aclose())

    async def _abort_writers(self) -> None:
        writers = [w for w in self._writers if not w.closed]
        await asyncio.gather(*(w.abort() for w in writers), return_exceptions=True)

    async def __aenter__(self) -> AsyncStorage:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- files --------------------------------------------------------------
    @overload
    def open(
        self,
        path: str,
        mode: ReadMode = ...,
        extra_args: None = None,
        *,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
        size_hint: int | None = None,
    ) -> OpenFile[AsyncReader]: ...

    @overload
    def open(
        self,
        path: str,
        mode: WriteMode,
        extra_args: Mapping[str, Any] | None = None,
        *,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
        size_hint: int | None = None,
    ) -> OpenFile[AsyncWriter]: ...

    @overload
    def open(
        self,
        path: str,
        mode: str | FileMode,
        extra_args: Mapping[str, Any] | None = None,
        *,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
        size_hint: int | None = None,
    ) -> OpenFile[AsyncReader] | OpenFile[AsyncWriter]: ...

    def open(
        self,
        path: str,
        mode: str | FileMode = "rb",
        extra_args: Mapping[str, Any] | None = None,
        *,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
        size_hint: int | None = None,
    ) -> OpenFile[AsyncReader] | OpenFile[AsyncWriter]:
        """Open ``path`` for reading (``"rb"``) or writing (``"wb"``, ``"xb"``).

        The result is awaitable and an async context manager, like
        ``aiofiles.open``::

            async with storage.open("data/report.csv", "wb") as f:
                await f.write(b"id,total\\n")
            async with storage.open("data/report.csv", "rb") as f:
                data = await f.read()

        Args:
            path: the object's key.
            mode: ``"rb"`` reads; ``"wb"`` writes (replacing any object);
                ``"xb"`` writes only if the key is absent, else raises
                :class:`ObjectExistsError` (also a ``FileExistsError``).
            extra_args: for writes, backend arguments such as
                ``{"ContentType": "text/csv", "Metadata": {...}}`` (S3).
            chunk_size: overrides the storage's part / range size for this file.
            max_concurrency: overrides requests in flight for this file.
            max_attempts: overrides tries per request for this file.
            size_hint: for writes, the expected size, so that a very large
                object can choose its part size up front.

        Raises:
            ValueError: bad mode or settings (before any request).
            InvalidPathError: a key no backend accepts (before any request).
        """
        self._check_open()
        key = check_key(path)
        file_mode = FileMode.as_mode(mode)
        settings = self.settings.override(chunk_size, max_concurrency, max_attempts)
        if size_hint is not None and (isinstance(size_hint, bool) or size_hint < 0):
            raise ValueError(f"size_hint must be a non-negative int, got {size_hint!r}")
        if file_mode is FileMode.read:
            if extra_args:
                raise ValueError("extra_args apply to writes only; open with 'wb' to use them")
            return OpenFile(self._open_reader(key, settings))
        args: Mapping[str, Any] = {} if extra_args is None else extra_args
        if not isinstance(args, Mapping):
            raise TypeError(f"extra_args must be a mapping, got {type(args).__name__}")
        return OpenFile(
            self._tracked(
                self._open_writer(
                    key,
                    exclusive=file_mode == FileMode.write | FileMode.exclusive,
                    extra_args=dict(args),
                    settings=settings,
                    size_hint=size_hint,
                )
            )
        )

    async def _tracked(self, opening: Awaitable[AsyncWriter]) -> AsyncWriter:
        writer = await opening
        self._writers.add(writer)
        return writer

    # -- listing ------------------------------------------------------------
    async def iter_list(self, path: str = "") -> AsyncIterator[ListEntry]:
        """Yield every object whose key starts with ``path``, sorted, fetched page by page.

        Memory stays constant however many objects there are.
        """
        self._check_open()
        prefix = check_prefix(path)
        async for page in self._iter_pages(prefix):
            for entry in page:
                yield entry

    async def list(self, path: str = "") -> builtins.list[ListEntry]:
        """Return every object whose key starts with ``path`` (S3 prefix semantics), sorted."""
        return [entry async for entry in self.iter_list(path)]

    # -- single-object operations --------------------------------------------
    async def stat(self, path: str) -> ObjectInfo:
        """Describe an object.

        Raises:
            ObjectNotFoundError: the key does not exist.
        """
        self._check_open()
        return await self._stat(check_key(path))

    async def exists(self, path: str) -> bool:
        """Return whether an object exists under ``path``."""
        try:
            await self.stat(path)
        except ObjectNotFoundError:
            return False
        return True

    async def delete(self, path: str) -> None:
        """Delete one object. Deleting a missing key is not an error (as on S3)."""
        self._check_open()
        await self._delete(check_key(path))

    async def delete_many(self, paths: Iterable[str]) -> None:
        """Delete many objects concurrently.

        Every key is checked before the first request. All deletions are
        attempted; if any fail, a :class:`TransferError` lists them in
        ``failures``.
        """
        self._check_open()
        keys = list(dict.fromkeys(check_key(p) for p in paths))
        failures = await self._delete_keys(keys)
        if failures:
            first = next(iter(failures.items()))
            raise TransferError(
                f"{len(failures)} of {len(keys)} deletions failed; first: {first[0]!r}: {first[1]}",
                operation="delete_many",
                failures=failures,
            )

    async def _delete_keys(self, keys: builtins.list[str]) -> dict[str, BaseException]:
        failures: dict[str, BaseException] = {}
        limit = asyncio.Semaphore(self.settings.max_concurrency)

        async def one(key: str) -> None:
            async with limit:
                try:
                    await self._delete(key)
                except StorageError as exc:
                    failures[key] = exc

        await gather_all(one(k) for k in keys)
        return failures

    async def copy(self, path: str, new_path: str) -> None:
        """Copy an object to a new key inside this storage (server-side where possible).

        Raises:
            ObjectNotFoundError: ``path`` does not exist.
        """
        self._check_open()
        await self._copy(check_key(path), check_key(new_path, what="new_path"))

    async def link_to(
        self,
        path: str,
        operation: ShareLinkOperation | str,
        expire: datetime | timedelta | int | float,
        output_path: str | None = None,
        content_type: str | None = None,
        content_encoding: str | None = None,
    ) -> str:
        """Return a URL that allows one operation on ``path`` until ``expire``.

        Args:
            path: the object's key.
            operation: ``"download"``, ``"upload"`` or ``"remove"`` (or
                keg-storage's ``"d"``, ``"u"``, ``"r"``, or a ``ShareLinkOperation``).
            expire: when the link stops working: an aware ``datetime`` (naive
                means UTC), a ``timedelta`` or seconds; at most 7 days ahead.
            output_path: for downloads, the file name the browser saves as.
            content_type: for uploads, the content type the uploader must send
                (default ``application/octet-stream``); for downloads, the
                type the response is served with.
            content_encoding: the content encoding signed likewise.

        Raises:
            ValueError: several operations, an unknown one, or a bad expiry.
            NotImplementedError: backends that cannot sign URLs.
        """
        self._check_open()
        key = check_key(path)
        op = ShareLinkOperation.as_operation(operation)
        seconds = expiry_seconds(expire)
        return await self._link(key, op, seconds, output_path, content_type, content_encoding)

    # -- transfers between storage and files ----------------------------------
    async def download(
        self,
        path: str,
        file_obj: Any,
        *,
        progress_callback: ProgressCallback | None = None,
    ) -> int:
        """Copy an object into a binary file object (sync or async); return its size.

        ``progress_callback`` receives the bytes copied so far (a sync or
        coroutine function); its last call equals the size.
        """
        done = 0
        async with self.open(path, "rb") as reader:
            async for chunk in reader.iter_chunks(reader_chunk(self.settings)):
                await write_to(file_obj, chunk)
                done += len(chunk)
                await call_progress(progress_callback, done)
        if done == 0:
            await call_progress(progress_callback, 0)
        return done

    async def upload(
        self,
        file_obj: Any,
        path: str,
        *,
        progress_callback: ProgressCallback | None = None,
        extra_args: Mapping[str, Any] | None = None,
        size_hint: int | None = None,
    ) -> int:
        """Copy a binary file object (sync or async) to ``path``; return the bytes sent.

        Sync file objects are read in a worker thread. The object appears only
        if the whole file was read and sent.
        """
        done = 0
        step = self.settings.chunk_size
        async with self.open(path, "wb", extra_args, size_hint=size_hint) as writer:
            while True:
                chunk = await read_from(file_obj, step)
                if not chunk:
                    break
                await writer.write(chunk)
                done += len(chunk)
                await call_progress(progress_callback, done)
        if done == 0:
            await call_progress(progress_callback, 0)
        return done

    async def get(
        self,
        path: str,
        dest: str | os.PathLike[str],
        *,
        progress_callback: ProgressCallback | None = None,
    ) -> int:
        """Copy the object at ``path`` to the local file ``dest``; return its size.

        The file is written under a temporary name and renamed into place, so
        ``dest`` is never left half-written; on failure it is untouched.
        """
        key = check_key(path)
        async with self.open(key, "rb") as reader, AtomicLocalFile(dest) as out:
            done = 0
            async for chunk in reader.iter_chunks(reader_chunk(self.settings)):
                await out.write(chunk)
                done += len(chunk)
                await call_progress(progress_callback, done)
            if done != reader.size:
                raise TransferError(
                    f"read {done} bytes of {reader.size} from {key!r}",
                    key=key,
                    operation="get",
                )
        if done == 0:
            await call_progress(progress_callback, 0)
        return done

    async def put(
        self,
        path: str | os.PathLike[str],
        dest: str,
        *,
        progress_callback: ProgressCallback | None = None,
        extra_args: Mapping[str, Any] | None = None,
    ) -> int:
        """Copy the local file ``path`` to the key ``dest`` (keg-storage's order).

        Without a ``ContentType`` in ``extra_args`` the type is guessed from
        the file's name (``mimetypes``), as the aws CLI does.

        Returns the number of bytes sent.
        """
        import aiofiles
        import aiofiles.os

        check_key(dest, what="dest")
        size = (await aiofiles.os.stat(path)).st_size
        if not extra_args or "ContentType" not in extra_args:
            # As the aws CLI does: the type from the file's name (mimetypes
            # reads the system's tables on first use, so in a thread).
            guessed = (await asyncio.to_thread(mimetypes.guess_type, os.fspath(path)))[0]
            if guessed:
                extra_args = {"ContentType": guessed, **(extra_args or {})}
        async with aiofiles.open(path, "rb") as src:
            return await self.upload(
                src,
                dest,
                progress_callback=progress_callback,
                extra_args=extra_args,
                size_hint=size,
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}{' closed' if self._closed else ''}>"


def reader_chunk(settings: TransferSettings) -> int:
    """Chunk size used when copying a reader to a file: one range, capped at 8 MiB."""
    return min(settings.chunk_size, 8 * 1024 * 1024)
