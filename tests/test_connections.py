"""Every response body is released on every path; ranged answers are checked (issue 13).

One connection in the pool: a body left open on any error path would make
the next request wait forever, so each test ends with a normal request under
a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiokeg import AsyncS3Storage, ObjectChangedError, StorageError, TransferError
from conftest import MiB, payload
from s3server import Fault, FaultLayer

DATA = payload(12 * MiB, seed=7)


async def _read_all(storage: AsyncS3Storage, key: str) -> bytes:
    async with storage.open(key, "rb") as r:
        return await r.read()


async def _still_serves(storage: AsyncS3Storage) -> None:
    """A normal write and read complete: no connection was left checked out."""

    async def roundtrip() -> None:
        async with storage.open("after", "wb") as f:
            await f.write(b"fine")
        assert await _read_all(storage, "after") == b"fine"
        assert await _read_all(storage, "big") == DATA

    await asyncio.wait_for(roundtrip(), 20)


@pytest.fixture
async def one_conn(make_s3: Callable[..., AsyncS3Storage], raw_s3: Any, bucket: str) -> Any:
    await raw_s3.put_object(Bucket=bucket, Key="big", Body=DATA)
    return make_s3(max_connections=1, max_concurrency=1, max_attempts=2)


async def test_server_ignoring_if_match_changed_size_releases_the_body(
    one_conn: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    faults.add(Fault(op="GetObject", drop_headers=("If-Match",), times=-1))
    async with one_conn.open("big", "rb") as r:
        await r.read(10)
        await raw_s3.put_object(Bucket=bucket, Key="big", Body=DATA + b"longer")
        with pytest.raises(ObjectChangedError):
            await r.seek(8 * MiB)
            await r.read(MiB)
    await raw_s3.put_object(Bucket=bucket, Key="big", Body=DATA)
    faults.reset()
    await _still_serves(one_conn)


async def test_server_ignoring_range_is_refused_not_misread(
    one_conn: AsyncS3Storage, faults: FaultLayer
) -> None:
    async with one_conn.open("big", "rb") as r:
        faults.add(Fault(op="GetObject", drop_headers=("Range",), times=-1))
        await r.seek(6 * MiB)
        with pytest.raises(TransferError, match="does not honour ranged reads"):
            await r.read(MiB)
    faults.reset()
    await _still_serves(one_conn)


def _error_paths(storage: AsyncS3Storage, faults: FaultLayer) -> list[Callable[[], Awaitable[Any]]]:
    def with_fault(fault: Fault, action: Callable[[], Awaitable[Any]]) -> Any:
        async def run() -> Any:
            faults.reset()
            faults.add(fault)
            try:
                return await action()
            finally:
                faults.reset()

        return run

    async def write(key: str, size: int) -> None:
        async with storage.open(key, "wb") as f:
            await f.write(payload(size))

    return [
        with_fault(
            Fault(op="GetObject", truncate_after=100, times=-1), lambda: _read_all(storage, "big")
        ),
        with_fault(Fault(op="GetObject", status=500, times=-1), lambda: _read_all(storage, "big")),
        with_fault(
            Fault(op="GetObject", status=403, code="AccessDenied"),
            lambda: _read_all(storage, "big"),
        ),
        with_fault(
            Fault(op="GetObject", garbage=True, times=-1), lambda: _read_all(storage, "big")
        ),
        with_fault(Fault(op="GetObject", reset=True, times=-1), lambda: _read_all(storage, "big")),
        with_fault(
            Fault(op="GetObject", status=404, code="NoSuchKey"), lambda: _read_all(storage, "nope")
        ),
        with_fault(Fault(op="HeadObject", status=500, times=-1), lambda: storage.stat("big")),
        with_fault(Fault(op="HeadObject", garbage=True, times=-1), lambda: storage.stat("big")),
        with_fault(Fault(op="PutObject", status=500, times=-1), lambda: write("small", 10)),
        with_fault(Fault(op="PutObject", garbage=True, times=-1), lambda: write("small", 10)),
        with_fault(Fault(op="PutObject", reset=True, times=-1), lambda: write("small", 10)),
        with_fault(Fault(op="UploadPart", status=500, times=-1), lambda: write("mp", 6 * MiB)),
        with_fault(
            Fault(op="UploadPart", truncate_after=0, times=-1), lambda: write("mp", 6 * MiB)
        ),
        with_fault(
            Fault(op="CompleteMultipartUpload", status=500, times=-1), lambda: write("mp", 6 * MiB)
        ),
        with_fault(Fault(op="ListObjects", status=500, times=-1), lambda: storage.list()),
        with_fault(
            Fault(op="GetObject", delay=2.0),
            lambda: asyncio.wait_for(_read_all(storage, "big"), 0.3),
        ),
        with_fault(
            Fault(op="PutObject", delay=1.0), lambda: asyncio.wait_for(write("slow", 10), 0.3)
        ),
    ]


async def test_every_error_path_gives_its_connection_back(
    one_conn: AsyncS3Storage, faults: FaultLayer
) -> None:
    failures = 0
    for action in _error_paths(one_conn, faults):
        try:
            await asyncio.wait_for(action(), 30)
        except (StorageError, asyncio.TimeoutError):
            failures += 1
        await _still_serves(one_conn)
    assert failures >= 15
