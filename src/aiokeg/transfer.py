"""Bulk transfers: copy or sync many objects between any two storages under one budget.

Example::

    from aiokeg import AsyncLocalStorage, AsyncS3Storage
    from aiokeg.transfer import sync

    async with AsyncLocalStorage("data") as src, AsyncS3Storage("bucket") as dst:
        report = await sync(src, dst, dst_prefix="backup/")
        print(report.summary())

Memory is bounded by ``max_bytes_in_flight`` for the whole job, however
many files there are: each file is streamed with its own small window, and
only as many files run at once as the budget allows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ._aio import call_progress, gather_all
from ._base import AsyncStorage
from ._errors import StorageError
from ._types import ListEntry
from ._validate import MIN_CHUNK_SIZE
from .s3 import AsyncS3Storage

__all__ = [
    "FileResult",
    "TransferEvent",
    "TransferReport",
    "copy_many",
    "copy_tree",
    "delete_tree",
    "folder",
    "sync",
]

#: Default budget of bytes held in memory by a whole transfer.
DEFAULT_BUDGET = 256 * 1024 * 1024
#: The least a file reserves of the budget (buffers, a response's pieces).
_MIN_FILE_COST = 64 * 1024


class _Budget:
    """A semaphore counted in bytes: a file waits until its reservation fits."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._changed = asyncio.Condition()

    async def take(self, wanted: int) -> int:
        """Reserve ``wanted`` bytes (at most the whole budget); return what was reserved."""
        wanted = min(wanted, self.total)
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= wanted)
            self.free -= wanted
        return wanted

    async def give(self, reserved: int) -> None:
        """Return a reservation."""
        async with self._changed:
            self.free += reserved
            self._changed.notify_all()


@dataclasses.dataclass(frozen=True)
class FileResult:
    """The outcome of one file of a bulk transfer.

    Attributes:
        source: key in the source storage.
        dest: key in the destination storage.
        size: bytes copied (0 when skipped or failed).
        skipped: True when sync found the destination unchanged.
        error: the error when the file failed, else ``None``.
    """

    source: str
    dest: str
    size: int = 0
    skipped: bool = False
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True unless the file failed."""
        return self.error is None


@dataclasses.dataclass(frozen=True)
class TransferEvent:
    """Progress of a bulk transfer, passed to ``on_progress``.

    Attributes:
        files_done: files finished (copied, skipped or failed).
        files_total: files in the job.
        bytes_done: bytes copied so far.
        bytes_total: bytes in the job (sizes from the listing).
        current: the key whose progress triggered this event.
    """

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str


@dataclasses.dataclass
class TransferReport:
    """Per-file results of a bulk transfer, and totals.

    Attributes:
        results: one :class:`FileResult` per file, in job order.
        deleted: keys deleted from the destination (``sync(delete=True)``).
        seconds: wall time of the job.
    """

    results: list[FileResult]
    deleted: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[FileResult]:
        """The files that failed."""
        return [r for r in self.results if r.error is not None]

    @property
    def copied(self) -> list[FileResult]:
        """The files that were copied."""
        return [r for r in self.results if r.ok and not r.skipped]

    @property
    def bytes_copied(self) -> int:
        """Bytes copied by the job."""
        return sum(r.size for r in self.copied)

    def summary(self) -> str:
        """One line: copied, skipped, failed, bytes and speed."""
        skipped = sum(1 for r in self.results if r.skipped)
        speed = self.bytes_copied / self.seconds / 2**20 if self.seconds else 0.0
        return (
            f"{len(self.copied)} copied, {skipped} skipped, {len(self.failures)} failed, "
            f"{len(self.deleted)} deleted; {self.bytes_copied / 2**20:.1f} MiB in "
            f"{self.seconds:.2f} s ({speed:.1f} MiB/s)"
        )


ProgressHandler = Callable[[TransferEvent], "Awaitable[None] | None"]


async def copy_many(
    src: AsyncStorage,
    dst: AsyncStorage,
    pairs: Iterable[tuple[str, str]] | Iterable[tuple[str, str, int]],
    *,
    max_bytes_in_flight: int = DEFAULT_BUDGET,
    chunk_size: int | None = None,
    per_file_concurrency: int = 8,
    max_files: int = 32,
    fail_fast: bool = False,
    on_progress: ProgressHandler | None = None,
) -> TransferReport:
    """Copy each ``(source_key, dest_key[, size])`` from ``src`` to ``dst``.

    One failure does not stop the others (unless ``fail_fast``); every file
    gets a :class:`FileResult`. Memory stays within ``max_bytes_in_flight``:
    each file holds at most ``(per_file_concurrency + 1) × chunk_size`` in its
    reader and as much in its writer, and a file reserves what it can hold,
    ``2 × min(size, (per_file_concurrency + 1) × chunk_size)`` (at least
    64 KiB; the whole window when the size is not given), before it starts.
    So many small files run at once, big ones fewer, and at most
    ``max_files`` (at least one file always runs).
    """
    if max_files < 1:
        raise ValueError(f"max_files={max_files} must be at least 1")
    jobs = [(p[0], p[1], p[2] if len(p) > 2 else 0) for p in pairs]
    chunk = chunk_size or MIN_CHUNK_SIZE
    window = (per_file_concurrency + 1) * chunk
    budget = _Budget(max(1, max_bytes_in_flight))

    def cost(size: int) -> int:
        return 2 * (window if size <= 0 else min(window, max(size, _MIN_FILE_COST)))

    started = time.monotonic()
    totals = {"files": 0, "bytes": 0}
    bytes_total = sum(size for _, _, size in jobs)
    results: list[FileResult | None] = [None] * len(jobs)
    queue = iter(enumerate(jobs))
    stop = asyncio.Event()

    async def report(current: str) -> None:
        if on_progress is not None:
            event = TransferEvent(totals["files"], len(jobs), totals["bytes"], bytes_total, current)
            await call_progress(on_progress, event)

    async def one(source: str, dest: str) -> int:
        if src is dst:
            await dst.copy(source, dest)
            size = (await dst.stat(dest)).size
            totals["bytes"] += size
            return size
        if isinstance(dst, AsyncS3Storage) and dst.same_service(src):
            # Same S3 service, same credentials: the server copies, nothing
            # passes through this process.
            size = await dst.copy_from_bucket(src.bucket, source, dest)
            totals["bytes"] += size
            return size
        copied = 0
        async with (
            src.open(
                source, "rb", chunk_size=chunk, max_concurrency=per_file_concurrency
            ) as reader,
            dst.open(
                dest,
                "wb",
                reader.extra_args,
                chunk_size=chunk,
                max_concurrency=per_file_concurrency,
                size_hint=reader.size,
            ) as writer,
        ):
            async for piece in reader.iter_chunks(chunk):
                await writer.write(piece)
                copied += len(piece)
                totals["bytes"] += len(piece)
                await report(source)
        return copied

    async def worker() -> None:
        for index, (source, dest, size_given) in queue:
            if stop.is_set():
                results[index] = FileResult(
                    source, dest, error=StorageError("not attempted: an earlier file failed")
                )
                continue
            reserved = await budget.take(cost(size_given))
            try:
                size = await one(source, dest)
                results[index] = FileResult(source, dest, size=size)
            except Exception as exc:  # every file gets its result, whatever it raised
                results[index] = FileResult(source, dest, error=exc)
                if fail_fast:
                    stop.set()
            finally:
                await budget.give(reserved)
            totals["files"] += 1
            await report(source)

    await gather_all(worker() for _ in range(min(max_files, len(jobs)) or 1))
    final = [r for r in results if r is not None]
    return TransferReport(final, seconds=time.monotonic() - started)


def folder(prefix: str) -> str:
    """The folder that a bulk operation's ``prefix`` names.

    In every bulk operation (:func:`sync`, :func:`copy_tree`,
    :func:`delete_tree`, and the command line's ``cp -r``, ``sync``,
    ``rm -r``) a prefix names a folder: ``"backup"`` and ``"backup/"`` both
    mean the keys under ``"backup/"``, so ``backup2/...`` and ``backupX`` are
    never touched. ``""`` (or ``"/"``) means the whole storage.
    (``storage.list(path)`` alone keeps S3's plain prefix semantics.)
    """
    stripped = prefix.rstrip("/")
    return stripped + "/" if stripped else ""


def _unchanged(src: ListEntry, dst: ListEntry | None) -> bool:
    if dst is None or src.size != dst.size:
        return False
    if src.etag and dst.etag and _is_md5(src.etag) and _is_md5(dst.etag):
        return src.etag == dst.etag
    # ETags of different kinds (multipart, encrypted, local files) cannot be
    # compared: fall back to "not older", at S3's one-second resolution.
    return dst.last_modified >= src.last_modified.replace(microsecond=0)


def _is_md5(etag: str) -> bool:
    return len(etag) == 32 and all(c in "0123456789abcdefABCDEF" for c in etag)


async def _tree(storage: AsyncStorage, prefix: str) -> dict[str, ListEntry]:
    """Entries under the folder ``prefix`` names, by their path relative to it."""
    base = folder(prefix)
    return {e.name[len(base) :]: e async for e in storage.iter_list(base)}


async def copy_tree(
    src: AsyncStorage,
    dst: AsyncStorage,
    *,
    src_prefix: str = "",
    dst_prefix: str = "",
    **options: Any,
) -> TransferReport:
    """Copy every object under the folder ``src_prefix`` to the folder ``dst_prefix``.

    Both prefixes name folders (see :func:`folder`): ``src_prefix="data"``
    copies ``data/a`` to ``<dst_prefix>/a`` and leaves ``data2/...`` alone.
    Options are those of :func:`copy_many`.
    """
    started = time.monotonic()
    dst_base = folder(dst_prefix)
    sources = await _tree(src, src_prefix)
    jobs = [(e.name, dst_base + rel, e.size) for rel, e in sources.items()]
    report = await copy_many(src, dst, jobs, **options)
    report.seconds = time.monotonic() - started
    return report


async def delete_tree(storage: AsyncStorage, prefix: str, *, dry_run: bool = False) -> list[str]:
    """Delete every object under the folder ``prefix`` names; return the deleted keys.

    ``"backup"`` deletes ``backup/...`` and nothing else (see :func:`folder`).
    An empty prefix would delete everything: it raises ``ValueError``
    (delete the keys of ``storage.list()`` explicitly if that is meant).
    With ``dry_run`` nothing is deleted and the keys that would be are returned.
    """
    base = folder(prefix)
    if not base:
        raise ValueError(
            "delete_tree() with an empty prefix would delete every object in the storage; "
            "name a folder, or pass the keys of storage.list() to delete_many()"
        )
    keys = [e.name async for e in storage.iter_list(base)]
    if keys and not dry_run:
        await storage.delete_many(keys)
    return keys


async def sync(
    src: AsyncStorage,
    dst: AsyncStorage,
    *,
    src_prefix: str = "",
    dst_prefix: str = "",
    delete: bool = False,
    dry_run: bool = False,
    **options: Any,
) -> TransferReport:
    """Make the folder ``dst_prefix`` in ``dst`` a copy of the folder ``src_prefix`` in ``src``.

    Both prefixes name folders (see :func:`folder`); keys are joined with
    exactly one ``/``, and nothing outside the destination folder is ever
    overwritten or deleted. Objects whose size and ETag (or, where ETags
    cannot be compared, modification time) already match are skipped,
    decided from the two listings alone. With ``delete=True``, objects
    under the destination folder that have no source are deleted. With
    ``dry_run``, nothing is copied or deleted: the report lists what would
    be (``results`` as skipped or not, ``deleted``). Other options are those
    of :func:`copy_many`.
    """
    started = time.monotonic()
    dst_base = folder(dst_prefix)
    sources = await _tree(src, src_prefix)
    existing = await _tree(dst, dst_prefix)
    todo: list[tuple[str, str, int]] = []
    skipped: list[FileResult] = []
    for rel, entry in sources.items():
        if _unchanged(entry, existing.get(rel)):
            skipped.append(FileResult(entry.name, dst_base + rel, skipped=True))
        else:
            todo.append((entry.name, dst_base + rel, entry.size))
    extra = [dst_base + rel for rel in existing if rel not in sources] if delete else []
    if dry_run:
        planned = [FileResult(source, dest, size=size) for source, dest, size in todo]
        report = TransferReport(skipped + planned, deleted=extra)
    else:
        report = await copy_many(src, dst, todo, **options)
        report.results = skipped + report.results
        if extra:
            await dst.delete_many(extra)
        report.deleted = extra
    report.seconds = time.monotonic() - started
    return report
