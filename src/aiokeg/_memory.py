"""An in-process backend with S3's semantics, for testing code that uses aiokeg."""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

from ._base import AsyncStorage
from ._errors import ObjectExistsError, ObjectNotFoundError
from ._files import AsyncReader, AsyncWriter
from ._types import ListEntry, ObjectInfo
from ._validate import TransferSettings

__all__ = ["AsyncMemoryStorage"]

_PAGE = 1000
_DEFAULT_CONTENT_TYPE = "binary/octet-stream"


@dataclasses.dataclass(frozen=True)
class _Blob:
    data: bytes
    last_modified: datetime
    etag: str
    content_type: str
    metadata: Mapping[str, str]

    def info(self, key: str) -> ObjectInfo:
        return ObjectInfo(
            name=key,
            size=len(self.data),
            last_modified=self.last_modified,
            etag=self.etag,
            content_type=self.content_type,
            metadata=dict(self.metadata),
        )


class AsyncMemoryStorage(AsyncStorage):
    """Objects kept in a dict, with the same semantics as the S3 backend.

    Meant for your own tests: swap it in for :class:`AsyncS3Storage` and no
    server is needed. A write becomes visible only when the writer closes;
    an abort, an exception or a cancellation leaves nothing. ``extra_args``
    ``ContentType`` and ``Metadata`` are kept; links are not supported.

    Example::

        storage = AsyncMemoryStorage()
        async with storage.open("k", "wb") as f:
            await f.write(b"hello")
        assert (await storage.stat("k")).size == 5
    """

    def __init__(
        self,
        name: str = "memory",
        *,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
    ) -> None:
        super().__init__(
            name,
            chunk_size=chunk_size,
            max_concurrency=max_concurrency,
            max_attempts=max_attempts,
        )
        self._blobs: dict[str, _Blob] = {}
        self._keys: list[str] = []  # sorted, for prefix listing

    def _get(self, key: str, operation: str) -> _Blob:
        try:
            return self._blobs[key]
        except KeyError:
            raise ObjectNotFoundError(
                f"no object {key!r} in memory storage {self.name!r}",
                bucket=self.name,
                key=key,
                operation=operation,
            ) from None

    def _store(self, key: str, blob: _Blob) -> None:
        if key not in self._blobs:
            bisect.insort(self._keys, key)
        self._blobs[key] = blob

    async def _open_reader(self, key: str, settings: TransferSettings) -> AsyncReader:
        self._check_open()
        return _MemoryReader(key, self._get(key, "open"))

    async def _open_writer(
        self,
        key: str,
        *,
        exclusive: bool,
        extra_args: Mapping[str, Any],
        settings: TransferSettings,
        size_hint: int | None,
    ) -> AsyncWriter:
        self._check_open()
        if exclusive and key in self._blobs:
            raise _exists(self.name, key)
        return _MemoryWriter(self, key, exclusive, extra_args)

    async def _iter_pages(self, prefix: str) -> AsyncIterator[list[ListEntry]]:
        start = bisect.bisect_left(self._keys, prefix)
        while True:
            page: list[ListEntry] = []
            for key in self._keys[start : start + _PAGE]:
                if not key.startswith(prefix):
                    break
                blob = self._blobs[key]
                page.append(ListEntry(key, blob.last_modified, len(blob.data), blob.etag))
            if page:
                yield page
            if len(page) < _PAGE:
                return
            # Resume after the last key seen, even if the dict changed meanwhile.
            start = bisect.bisect_right(self._keys, page[-1].name)

    async def _delete(self, key: str) -> None:
        if self._blobs.pop(key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]

    async def _copy(self, key: str, new_key: str) -> None:
        blob = self._get(key, "copy")
        self._store(new_key, dataclasses.replace(blob, last_modified=_now()))

    async def _stat(self, key: str) -> ObjectInfo:
        return self._get(key, "stat").info(key)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _exists(name: str, key: str) -> ObjectExistsError:
    return ObjectExistsError(
        f"{key!r} already exists in memory storage {name!r}; mode 'xb' creates only new keys",
        bucket=name,
        key=key,
        operation="open",
    )


class _MemoryReader(AsyncReader):
    def __init__(self, key: str, blob: _Blob) -> None:
        super().__init__(key, len(blob.data), blob.etag, blob.content_type, blob.last_modified)
        self._data = blob.data  # pinned: later writes replace the blob, not these bytes

    async def _read_at(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]


class _MemoryWriter(AsyncWriter):
    def __init__(
        self,
        storage: AsyncMemoryStorage,
        key: str,
        exclusive: bool,
        extra_args: Mapping[str, Any],
    ) -> None:
        super().__init__(key)
        self._storage = storage
        self._exclusive = exclusive
        self._extra = extra_args
        self._buffer = bytearray()

    async def _write(self, data: memoryview) -> None:
        self._buffer += data

    async def _commit(self) -> None:
        self._storage._check_open()
        if self._exclusive and self.name in self._storage._blobs:
            raise _exists(self._storage.name, self.name)
        data = bytes(self._buffer)
        self._buffer = bytearray()
        blob = _Blob(
            data=data,
            last_modified=_now(),
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            content_type=str(self._extra.get("ContentType", _DEFAULT_CONTENT_TYPE)),
            metadata=dict(self._extra.get("Metadata", {})),
        )
        self._storage._store(self.name, blob)

    async def _abort(self) -> None:
        self._buffer = bytearray()
