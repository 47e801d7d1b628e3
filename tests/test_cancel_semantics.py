"""Cancellation and misuse leave nothing ambiguous (issue 13, items 1-3).

- a cancellation during ``CreateMultipartUpload`` leaves no upload behind;
- a cancelled ``close()`` never publishes after it has raised (no lost update);
- ``aclose()`` aborts writers still open;
- two tasks using one file object get ``ConcurrentUseError``, not scrambled parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from aiokeg import AsyncMemoryStorage, AsyncS3Storage, ConcurrentUseError, TransferError
from conftest import MiB, get_bytes, list_uploads, payload
from s3server import Fault, FaultLayer


async def test_cancel_during_create_multipart_upload_leaves_no_upload(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    # The server makes the upload, then holds its answer; the caller gives up.
    faults.add(Fault(op="CreateMultipartUpload", delay=0.5))
    writer = await s3.open("big", "wb").__aenter__()
    task = asyncio.create_task(writer.write(payload(6 * MiB)))
    while not faults.ops("CreateMultipartUpload"):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()
    assert await list_uploads(raw_s3, bucket) == []
    assert (await raw_s3.list_objects_v2(Bucket=bucket)).get("KeyCount", 0) == 0


async def test_create_whose_answer_is_lost_and_retries_fail_leaves_no_upload(
    make_s3: Callable[..., AsyncS3Storage], raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=2)
    # First create: the server makes the upload, the answer is lost.
    faults.add(Fault(op="CreateMultipartUpload", reset=True))
    # Every later create fails outright.
    faults.add(Fault(op="CreateMultipartUpload", status=500, times=-1))
    with pytest.raises(TransferError):
        async with s3.open("big", "wb") as f:
            await f.write(payload(6 * MiB))
    assert await list_uploads(raw_s3, bucket) == []


@pytest.mark.parametrize("size", [11, 6 * MiB], ids=["single-put", "multipart"])
async def test_cancelled_close_never_publishes_after_it_raised(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer, size: int
) -> None:
    publish = "PutObject" if size < 5 * MiB else "CompleteMultipartUpload"
    faults.add(Fault(op=publish, key="k", delay=1.0))
    a = await s3.open("k", "wb").__aenter__()
    await a.write(b"A" * size)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(a.close(), 0.2)
    # close() waited for the server's answer: whatever happened is settled now.
    settled = a.state
    assert settled in ("closed", "aborted", "failed")
    faults.reset()
    async with s3.open("k", "wb") as b:
        await b.write(b"B" * 7)
    await asyncio.sleep(1.5)  # longer than the server held A's request
    assert await get_bytes(raw_s3, bucket, "k") == b"B" * 7, "a cancelled close() published late"
    assert await list_uploads(raw_s3, bucket) == []


async def test_cancelled_close_reports_whether_it_published(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    faults.add(Fault(op="PutObject", key="k", delay=0.5))
    a = await s3.open("k", "wb").__aenter__()
    await a.write(b"published anyway")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(a.close(), 0.1)
    # The PUT had been sent: close() waited for it and says the object is there.
    assert a.state == "closed"
    assert await get_bytes(raw_s3, bucket, "k") == b"published anyway"
    await a.close()  # idempotent, no error


async def test_aclose_aborts_open_multipart_writer(
    make_s3: Callable[..., AsyncS3Storage], raw_s3: Any, bucket: str
) -> None:
    s3 = make_s3()
    writer = await s3.open("big", "wb").__aenter__()
    await writer.write(payload(11 * MiB))  # parts uploaded, nothing completed
    assert len(await list_uploads(raw_s3, bucket)) == 1
    await s3.aclose()
    assert writer.state == "aborted"
    assert await list_uploads(raw_s3, bucket) == []
    assert (await raw_s3.list_objects_v2(Bucket=bucket)).get("KeyCount", 0) == 0


async def test_aclose_leaves_closed_writers_alone(
    make_s3: Callable[..., AsyncS3Storage], raw_s3: Any, bucket: str
) -> None:
    s3 = make_s3()
    async with s3.open("done", "wb") as f:
        await f.write(b"kept")
    await s3.aclose()
    assert await get_bytes(raw_s3, bucket, "done") == b"kept"


async def test_two_tasks_writing_one_writer_get_concurrent_use_error(
    make_s3: Callable[..., AsyncS3Storage], raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    # One part at a time: the first write() waits for part 1 before queuing part 2.
    s3 = make_s3(max_concurrency=1)
    faults.add(Fault(op="UploadPart", delay=0.3, times=-1))
    data = payload(16 * MiB)
    async with s3.open("k", "wb") as f:
        first = asyncio.create_task(f.write(data))
        while not faults.ops("UploadPart"):
            await asyncio.sleep(0.01)
        with pytest.raises(ConcurrentUseError, match="one task at a time"):
            await f.write(b"interleaved")
        await first
    # The refused call changed nothing: the object is exactly the first task's bytes.
    assert await get_bytes(raw_s3, bucket, "k") == data


async def test_two_tasks_reading_one_reader_get_concurrent_use_error(
    s3: AsyncS3Storage, faults: FaultLayer
) -> None:
    data = payload(16 * MiB)
    async with s3.open("k", "wb") as f:
        await f.write(data)
    faults.add(Fault(op="GetObject", delay=0.5, times=-1))
    async with s3.open("k", "rb") as r:
        first = asyncio.create_task(r.read())
        await asyncio.sleep(0.1)
        assert not first.done()  # waiting on ranges the server holds
        with pytest.raises(ConcurrentUseError):
            await r.read(10)
        assert await first == data


async def test_concurrent_use_error_is_a_runtime_error() -> None:
    assert issubclass(ConcurrentUseError, RuntimeError)


@pytest.mark.parametrize("offset", ["3", 1.5, None, True])
async def test_seek_rejects_non_integer_offsets(offset: Any) -> None:
    async with AsyncMemoryStorage() as storage:
        async with storage.open("k", "wb") as f:
            await f.write(b"0123456789")
        async with storage.open("k", "rb") as r:
            with pytest.raises(TypeError, match="offset must be an int"):
                await r.seek(offset)
            assert await r.read(2) == b"01"
