"""Local files written atomically: an unnamed file beside the target, named on success.

On Linux the data goes to an anonymous file (``O_TMPFILE``) in the target's
folder, which has no name until :meth:`AtomicLocalFile.commit` links it in:
a cancellation, Ctrl-C or a crash at any moment of a download leaves
nothing behind, because the kernel frees an unnamed file when its
descriptor closes. Where ``O_TMPFILE`` is not available (other systems,
some network file systems) a named temporary file ``.<name>.aiokeg-<hex>.tmp``
is used and removed on every exit path Python runs.

All blocking calls run in worker threads, so the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
from collections.abc import Sequence
from types import TracebackType

from ._aio import run_shielded

__all__ = ["TEMP_MARKER", "AtomicLocalFile", "is_temp_name"]

#: Temporary files are named ``.<name>.aiokeg-<random>.tmp``; listings skip them.
TEMP_MARKER = ".aiokeg-"


def is_temp_name(name: str) -> bool:
    """True for the basename of one of our temporary files."""
    return name.startswith(".") and TEMP_MARKER in name and name.endswith(".tmp")


def _temp_path(dest: str) -> str:
    folder, base = os.path.split(dest)
    # Not a secret, only unlikely to collide (the file is created with O_EXCL):
    # the random module spares a getrandom() call per file.
    return os.path.join(folder, f".{base}{TEMP_MARKER}{random.getrandbits(48):012x}.tmp")


class AtomicLocalFile:
    """Write ``dest`` all at once: nothing shows under its name until :meth:`commit`.

    Use as ``async with AtomicLocalFile(dest) as f: await f.write(...)``:
    a clean exit commits (fsync, then rename), an exception or cancellation
    removes the temporary file and leaves ``dest`` as it was.

    Args:
        dest: the final path.
        exclusive: commit only if ``dest`` does not exist (``FileExistsError``
            otherwise); done with a hard link, which is atomic.
        make_parents: create missing parent folders.
    """

    def __init__(
        self, dest: str | os.PathLike[str], *, exclusive: bool = False, make_parents: bool = False
    ) -> None:
        self.dest = os.fspath(dest)
        self.exclusive = exclusive
        self.make_parents = make_parents
        self.temp_path = _temp_path(self.dest)
        self._fd: int | None = None
        #: True while the data lives in an unnamed (O_TMPFILE) file.
        self.anonymous = False
        self._offset = 0
        self._done = False

    async def open(self) -> AtomicLocalFile:
        """Create the temporary file.

        A cancellation meanwhile waits for the file to exist, removes it and
        then propagates, so no descriptor or file is left behind.
        """
        opening = asyncio.ensure_future(asyncio.to_thread(self._open_sync))
        cancelled = False
        while True:
            try:
                self._fd = await asyncio.shield(opening)
                break
            except asyncio.CancelledError:
                if opening.done():
                    raise
                cancelled = True
        if cancelled:
            await self.discard()
            raise asyncio.CancelledError
        return self

    def _open_sync(self) -> int:
        folder = os.path.dirname(self.dest) or "."
        if self.make_parents:
            os.makedirs(folder, exist_ok=True)
        if _TMPFILE:
            try:
                fd = os.open(folder, os.O_WRONLY | _TMPFILE, 0o666)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
            else:
                self.anonymous = True
                return fd
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        return os.open(self.temp_path, flags, 0o666)

    @property
    def size(self) -> int:
        """Bytes written sequentially so far."""
        return self._offset

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``."""
        await self.pwrite(data, self._offset)
        self._offset += len(data)

    async def write_parts(self, parts: Sequence[bytes | memoryview]) -> None:
        """Append ``parts`` one after the other, in one worker-thread call."""
        await self.pwrite_parts(parts, self._offset)
        self._offset += sum(len(p) for p in parts)

    async def pwrite(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        """Write ``data`` at ``offset`` (for ranges that arrive out of order)."""
        assert self._fd is not None, "open() first"
        await asyncio.to_thread(_pwrite_all, self._fd, data, offset)

    async def pwrite_parts(self, parts: Sequence[bytes | memoryview], offset: int) -> None:
        """Write ``parts`` one after the other from ``offset``, in one worker-thread call."""
        assert self._fd is not None, "open() first"
        await asyncio.to_thread(_pwrite_parts, self._fd, parts, offset)

    async def truncate(self, size: int) -> None:
        """Set the file's size (preallocates the holes that ranged writes fill)."""
        assert self._fd is not None, "open() first"
        await asyncio.to_thread(os.ftruncate, self._fd, size)

    async def commit(self) -> None:
        """Flush to disk and move the file into place."""
        if self._done:
            return
        self._done = True
        try:
            await asyncio.to_thread(self._commit_sync)
        except BaseException:
            await asyncio.to_thread(self._discard_sync)
            raise

    def _commit_sync(self) -> None:
        fd, self._fd = self._fd, None
        assert fd is not None
        try:
            os.fsync(fd)
            if self.anonymous:
                self._link_anonymous(fd)
                return
        finally:
            os.close(fd)
        if self.exclusive:
            os.link(self.temp_path, self.dest)
            os.unlink(self.temp_path)
        else:
            os.replace(self.temp_path, self.dest)

    def _link_anonymous(self, fd: int) -> None:
        if self.exclusive:
            # link() fails if dest exists: an atomic exclusive create.
            _link_fd(fd, self.dest)
            return
        # A name only for the instant between link and rename, in this one
        # thread call (a cancellation cannot stop it half-way).
        _link_fd(fd, self.temp_path)
        try:
            os.replace(self.temp_path, self.dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_path)
            raise

    async def discard(self) -> None:
        """Remove the temporary file; ``dest`` is untouched. Idempotent."""
        if self._done:
            return
        self._done = True
        await asyncio.to_thread(self._discard_sync)

    def _discard_sync(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        if not self.anonymous:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_path)

    async def __aenter__(self) -> AtomicLocalFile:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await run_shielded(self.commit())
        else:
            await run_shielded(self.discard())


#: Linux's flag for an unnamed file, if /proc can name it at commit (else 0).
_TMPFILE = getattr(os, "O_TMPFILE", 0) if os.path.isdir("/proc/self/fd") else 0


def _link_fd(fd: int, path: str) -> None:
    """Give the unnamed file open as ``fd`` the name ``path``.

    linkat(2) with AT_SYMLINK_FOLLOW on /proc/self/fd/N, as open(2) documents
    for O_TMPFILE. (os.link uses linkat only when a dir_fd is given, hence
    the folder's descriptor.)
    """
    folder, name = os.path.split(path)
    dir_fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
    finally:
        os.close(dir_fd)


def _pwrite_parts(fd: int, parts: Sequence[bytes | memoryview], offset: int) -> None:
    for part in parts:
        _pwrite_all(fd, part, offset)
        offset += len(part)


def _pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
