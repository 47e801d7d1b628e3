"""``AsyncLocalStorage``: objects as files under a root folder, written atomically."""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import shutil
import stat as stat_mod
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from ._base import AsyncStorage
from ._errors import (
    AccessDeniedError,
    InvalidPathError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageError,
)
from ._files import AsyncReader, AsyncWriter
from ._localfs import AtomicLocalFile, is_temp_name
from ._types import ListEntry, ObjectInfo
from ._validate import TransferSettings

__all__ = ["AsyncLocalStorage"]

_PAGE = 1000
#: Small writes are gathered into this many bytes before one trip to a worker thread.
_WRITE_BUFFER = 1024 * 1024


class AsyncLocalStorage(AsyncStorage):
    """Objects stored as files under ``root``; keys are ``/``-separated relative paths.

    Writes are atomic: data goes to a temporary file in the target folder and
    is renamed into place when the writer closes; an abort, an exception or
    a cancellation removes it. Temporary files never show in listings.
    Every key that would leave ``root`` is refused with
    :class:`InvalidPathError` before the disk is touched: ``..`` and ``.``
    segments, absolute paths, empty segments, NUL bytes, and symbolic links
    that lead outside. Listings skip symbolic links.

    All file-system calls run in worker threads; the event loop never
    blocks. ``extra_args`` are accepted and ignored (files have no content
    type or metadata), so code written for S3 runs unchanged; links are not
    supported.

    Args:
        root: an existing folder.
        name: this storage's name (default: the root's path).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        name: str | None = None,
        *,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
    ) -> None:
        # Resolved (abspath, realpath) on first use, in a worker thread: even
        # os.getcwd() is a system call the event loop should not wait on.
        self.root = os.fspath(root)
        super().__init__(
            name or self.root,
            chunk_size=chunk_size,
            max_concurrency=max_concurrency,
            max_attempts=max_attempts,
        )
        self._real_root: str | None = None

    def __repr__(self) -> str:
        return f"<AsyncLocalStorage root={self.root!r}{' closed' if self.closed else ''}>"

    # -- paths ------------------------------------------------------------------
    def _segments(self, key: str) -> list[str]:
        """Split a key, refusing anything that could leave the root (no I/O)."""
        if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
            raise InvalidPathError(
                f"key {key!r} is absolute: keys are relative to the storage root", key=key
            )
        parts = key.split("/")
        for part in parts:
            if part in ("", ".", ".."):
                raise InvalidPathError(
                    f"key {key!r} has a {part or 'empty'!r} segment; local keys must be "
                    "plain relative paths such as 'dir/file.bin'",
                    key=key,
                )
            if is_temp_name(part):
                raise InvalidPathError(
                    f"key {key!r} looks like one of aiokeg's temporary files", key=key
                )
        return parts

    def _root_sync(self) -> str:
        if self._real_root is None:
            if not os.path.isdir(self.root):
                raise InvalidPathError(
                    f"root {self.root!r} of AsyncLocalStorage "
                    + ("is not a folder" if os.path.exists(self.root) else "does not exist")
                    + ": create the folder first",
                    bucket=self.root,
                )
            self._real_root = os.path.realpath(os.path.abspath(self.root))
        return self._real_root

    def _path_sync(self, key: str) -> str:
        """The file for ``key``, after checking that no symlink leads out of the root."""
        root = self._root_sync()
        path = os.path.join(root, *self._segments(key))
        real = os.path.realpath(path)
        if real != root and os.path.commonpath([root, real]) != root:
            raise InvalidPathError(
                f"key {key!r} leads outside the storage root through a symbolic link",
                bucket=self.root,
                key=key,
            )
        return path

    async def _path(self, key: str) -> str:
        self._segments(key)  # refuse bad keys before touching the disk
        return await asyncio.to_thread(self._path_sync, key)

    @contextlib.contextmanager
    def _errors(self, key: str | None, operation: str) -> Iterator[None]:
        """The one place where ``OSError`` becomes an aiokeg error."""
        try:
            yield
        except StorageError:
            raise
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFoundError(
                f"{key!r} does not exist under {self.root!r} ({operation})",
                bucket=self.root,
                key=key,
                operation=operation,
            ) from exc
        except FileExistsError as exc:
            raise ObjectExistsError(
                f"{key!r} already exists under {self.root!r}; mode 'xb' creates only new keys",
                bucket=self.root,
                key=key,
                operation=operation,
            ) from exc
        except PermissionError as exc:
            raise AccessDeniedError(
                f"{operation} {key!r} under {self.root!r}: permission denied",
                bucket=self.root,
                key=key,
                operation=operation,
            ) from exc
        except OSError as exc:
            raise StorageError(
                f"{operation} {key!r} under {self.root!r} failed: {exc.strerror or exc}",
                bucket=self.root,
                key=key,
                operation=operation,
            ) from exc

    # -- files ------------------------------------------------------------------
    async def _open_reader(self, key: str, settings: TransferSettings) -> AsyncReader:
        with self._errors(key, "open"):
            path = await self._path(key)
            fd, st, content_type = await asyncio.to_thread(_open_for_reading, path, key)
        return _LocalReader(key, fd, st, content_type)

    async def _open_writer(
        self,
        key: str,
        *,
        exclusive: bool,
        extra_args: Mapping[str, Any],
        settings: TransferSettings,
        size_hint: int | None,
    ) -> AsyncWriter:
        with self._errors(key, "open"):
            path = await self._path(key)
            if exclusive and await asyncio.to_thread(os.path.lexists, path):
                raise FileExistsError(path)
            target = AtomicLocalFile(path, exclusive=exclusive, make_parents=True)
            await target.open()
        return _LocalWriter(self, key, target)

    # -- listing ------------------------------------------------------------------
    async def _iter_pages(self, prefix: str) -> AsyncIterator[list[ListEntry]]:
        with self._errors(prefix, "list"):
            root = await asyncio.to_thread(self._root_sync)
        folder_key, _, leaf = prefix.rpartition("/")
        if folder_key:
            try:
                start = await self._path(folder_key)
            except InvalidPathError:
                return  # no valid key can start with this prefix
        else:
            start = root
        page: list[ListEntry] = []
        async for entry in _walk(start, folder_key + "/" if folder_key else "", leaf):
            page.append(entry)
            if len(page) >= _PAGE:
                yield page
                page = []
        if page:
            yield page

    # -- single objects -------------------------------------------------------------
    async def _stat(self, key: str) -> ObjectInfo:
        with self._errors(key, "stat"):
            path = await self._path(key)
            return await asyncio.to_thread(_stat_file, path, key)

    async def _delete(self, key: str) -> None:
        with self._errors(key, "delete"):
            path = await self._path(key)
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.unlink, path)

    async def _copy(self, key: str, new_key: str) -> None:
        with self._errors(key, "copy"):
            src = await self._path(key)
            dst = await self._path(new_key)
            await asyncio.to_thread(_copy_file, src, dst)


def _open_for_reading(path: str, key: str) -> tuple[int, os.stat_result, str]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise IsADirectoryError(path)
        return fd, st, _content_type(key)
    except BaseException:
        os.close(fd)
        raise


def _stat_file(path: str, key: str) -> ObjectInfo:
    st = os.stat(path)
    if not stat_mod.S_ISREG(st.st_mode):
        raise FileNotFoundError(path)
    return ObjectInfo(
        name=key,
        size=st.st_size,
        last_modified=_mtime(st),
        etag=_etag(st),
        content_type=_content_type(key),
    )


def _content_type(key: str) -> str:
    # mimetypes reads the system's tables on first use: call only in a thread.
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _copy_file(src: str, dst: str) -> None:
    """Copy via a temporary file renamed into place (the kernel copies the bytes)."""
    if not os.path.isfile(src):
        raise FileNotFoundError(src)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    target = AtomicLocalFile(dst)
    try:
        shutil.copyfile(src, target.temp_path)
        os.replace(target.temp_path, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target.temp_path)
        raise


def _etag(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, tz=timezone.utc)


def _scan(folder: str, leaf: str) -> list[tuple[str, bool, os.stat_result | None]]:
    """List one folder: (name, is_folder, stat of files), sorted in key order."""
    found: list[tuple[str, bool, os.stat_result | None]] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        name = entry.name
        if not name.startswith(leaf) or is_temp_name(name) or entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            found.append((name, True, None))
        elif entry.is_file(follow_symlinks=False):
            found.append((name, False, entry.stat(follow_symlinks=False)))
    # Keys compare as strings: a folder "a" holds keys "a/...", which sort
    # as "a/", so sort folders by name + "/" to get S3's order.
    found.sort(key=lambda item: item[0] + "/" if item[1] else item[0])
    return found


async def _walk(folder: str, key_prefix: str, leaf: str = "") -> AsyncIterator[ListEntry]:
    for name, is_folder, st in await asyncio.to_thread(_scan, folder, leaf):
        if is_folder:
            async for entry in _walk(os.path.join(folder, name), f"{key_prefix}{name}/"):
                yield entry
        else:
            assert st is not None
            yield ListEntry(key_prefix + name, _mtime(st), st.st_size, _etag(st))


class _LocalReader(AsyncReader):
    def __init__(self, key: str, fd: int, st: os.stat_result, content_type: str) -> None:
        super().__init__(key, st.st_size, _etag(st), content_type, _mtime(st))
        # The open descriptor pins the file: an atomic replace by a writer
        # does not change what this reader sees.
        self._fd: int | None = fd

    async def _read_at(self, offset: int, size: int) -> bytes:
        assert self._fd is not None
        data = await asyncio.to_thread(_pread_all, self._fd, size, offset)
        return data

    async def _aclose(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            await asyncio.to_thread(os.close, fd)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # type: ignore[arg-type]


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    pieces = []
    while size > 0:
        data = os.pread(fd, size, offset)
        if not data:
            break
        pieces.append(data)
        size -= len(data)
        offset += len(data)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _LocalWriter(AsyncWriter):
    def __init__(self, storage: AsyncLocalStorage, key: str, target: AtomicLocalFile) -> None:
        super().__init__(key)
        self._storage = storage
        self._target = target
        # Views of the caller's bytes (immutable: no copy), copies of anything else.
        self._pending: list[bytes | memoryview] = []
        self._pending_size = 0

    async def _write(self, data: memoryview) -> None:
        self._pending.append(data if isinstance(data.obj, bytes) else bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= _WRITE_BUFFER:
            await self._flush()

    async def _flush(self) -> None:
        parts, self._pending, self._pending_size = self._pending, [], 0
        await self._target.write_parts(parts)

    async def _commit(self) -> None:
        with self._storage._errors(self.name, "close"):
            if self._pending:
                await self._flush()
            await self._target.commit()

    async def _abort(self) -> None:
        self._pending, self._pending_size = [], 0
        await self._target.discard()

    def _leak_cleanup(self) -> None:
        # Runs in __del__: remove the temporary file without blocking the loop.
        # The job belongs to the loop's executor, which the loop waits for on close.
        target = self._target
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            target._discard_sync()
            return
        loop.run_in_executor(None, target._discard_sync)
