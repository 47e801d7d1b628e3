"""The S3 reader's contract (DESIGN §3), against moto's server over HTTP."""

from __future__ import annotations

import asyncio
import io
import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokeg import (
    AsyncS3Storage,
    ObjectChangedError,
    ObjectNotFoundError,
    TransferError,
)
from aiokeg.s3._reader import OPEN_WINDOW, Chunks
from conftest import MiB, payload
from s3server import Fault, FaultLayer


def requested_bytes(faults: FaultLayer) -> int:
    """Sum of the Range sizes of every GetObject the server received."""
    total = 0
    for r in faults.ops("GetObject"):
        first, _, last = r["range"].removeprefix("bytes=").partition("-")
        total += int(last) - int(first) + 1
    return total


def range_starts(faults: FaultLayer) -> list[int]:
    return [
        int(r["range"].removeprefix("bytes=").partition("-")[0]) for r in faults.ops("GetObject")
    ]


async def put(raw_s3: Any, bucket: str, key: str, data: bytes, **extra: Any) -> None:
    await raw_s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)


# -- 1. open -------------------------------------------------------------------------


async def test_open_sends_one_get_and_knows_the_object(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    """Opening asks for the first MiB: the answer carries a HEAD's facts and the bytes."""
    await put(raw_s3, bucket, "k", b"hello", ContentType="text/plain", Metadata={"a": "1"})
    faults.reset()
    async with s3.open("k", "rb") as f:
        (get,) = faults.requests
        assert (get["op"], get["range"], get["if_match"]) == (
            "GetObject",
            f"bytes=0-{OPEN_WINDOW - 1}",
            None,
        )
        assert f.size == 5
        assert f.content_type == "text/plain"
        assert f.etag == "5d41402abc4b2a76b9719d911017c592"
        assert f.last_modified.tzinfo is not None
        assert f.metadata == {"a": "1"}
        assert await f.read() == b"hello"
    assert len(faults.requests) == 1


async def test_open_an_empty_object(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    """An empty object has no byte range to serve (416): a HEAD looks it up instead."""
    await put(raw_s3, bucket, "empty", b"", ContentType="text/plain")
    faults.reset()
    async with s3.open("empty", "rb") as f:
        assert f.size == 0
        assert f.content_type == "text/plain"
        assert await f.read() == b""
    ops = [r["op"] for r in faults.requests]
    assert ops in (["GetObject", "HeadObject"], ["GetObject"])


async def test_body_cut_at_open_is_fetched_again(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(3 * MiB)
    await put(raw_s3, bucket, "cut", data)
    faults.reset()
    faults.add(Fault(op="GetObject", truncate_after=1000))
    async with s3.open("cut", "rb") as f:
        assert await f.read() == data
    assert range_starts(faults)[:2] == [0, 0]


async def test_open_missing_key_raises_object_not_found(s3: AsyncS3Storage) -> None:
    with pytest.raises(ObjectNotFoundError) as info:
        await s3.open("missing", "rb")
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.key == "missing"
    assert "missing" in str(info.value)


# -- 2. file API -----------------------------------------------------------------------


async def test_read_seek_tell_readinto_behave_like_a_file(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    data = payload(1000)
    await put(raw_s3, bucket, "f", data)
    ref = io.BytesIO(data)
    async with s3.open("f", "rb") as f:
        assert await f.read(10) == ref.read(10)
        assert await f.tell() == 10
        assert await f.seek(100) == 100
        assert await f.read(5) == data[100:105]
        assert await f.seek(-5, os.SEEK_CUR) == 100
        assert await f.seek(-10, os.SEEK_END) == 990
        assert await f.read() == data[990:]
        assert await f.read() == b""
        assert await f.seek(5000) == 5000
        assert await f.read(10) == b""
        await f.seek(0)
        buf = bytearray(16)
        assert await f.readinto(buf) == 16
        assert bytes(buf) == data[:16]
        with pytest.raises(ValueError, match="negative"):
            await f.seek(-1)
        with pytest.raises(ValueError, match="whence"):
            await f.seek(0, 3)


async def test_iteration_yields_chunks_that_join_to_the_object(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    data = payload(12 * MiB + 5)
    await put(raw_s3, bucket, "it", data)
    async with s3.open("it", "rb") as f:
        chunks = [c async for c in f.iter_chunks(3 * MiB)]
        assert [len(c) for c in chunks] == [3 * MiB] * 4 + [5]
        assert b"".join(chunks) == data
        await f.seek(0)
        assert b"".join([c async for c in f]) == data


async def test_read_minus_one_returns_the_whole_object(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(23 * MiB)
    await put(raw_s3, bucket, "all", data)
    faults.reset()
    async with s3.open("all", "rb") as f:
        assert await f.read() == data
    assert requested_bytes(faults) == len(data)


# -- 3. prefetch ---------------------------------------------------------------------------


async def test_sequential_reads_prefetch_up_to_the_bound(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_concurrency=3)
    data = payload(40 * MiB)
    await put(raw_s3, bucket, "seq", data)
    faults.reset()
    faults.add(Fault(op="GetObject", delay=0.1, times=-1))
    out = bytearray()
    async with s3.open("seq", "rb") as f:
        while chunk := await f.read(256 * 1024):
            out += chunk
    assert out == data
    assert faults.max_in_flight["GetObject"] == 3
    # The window grew: the last requests were whole chunks.
    sizes = [
        int(r["range"].split("-")[1]) - int(r["range"].split("=")[1].split("-")[0]) + 1
        for r in faults.ops("GetObject")
    ]
    assert sizes[0] == OPEN_WINDOW
    assert max(sizes) == 5 * MiB
    assert requested_bytes(faults) == len(data)


async def test_random_small_reads_fetch_little_more_than_they_read(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(64 * MiB)
    await put(raw_s3, bucket, "rand", data)
    faults.reset()
    rng = random.Random(7)
    async with s3.open("rand", "rb") as f:
        for _ in range(100):
            offset = rng.randrange(0, len(data) - 4096)
            await f.seek(offset)
            assert await f.read(4096) == data[offset : offset + 4096]
    assert requested_bytes(faults) < OPEN_WINDOW + 100 * 256 * 1024
    assert len(faults.ops("GetObject")) <= 1 + 100  # the GET at open, then one per read


async def test_seek_outside_the_window_cancels_prefetches(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(chunk_size=5 * MiB, max_concurrency=4)
    data = payload(60 * MiB)
    await put(raw_s3, bucket, "jump", data)
    faults.reset()
    async with s3.open("jump", "rb") as f:
        for _ in range(8):
            await f.read(MiB)  # grow the window
        reader: Any = f
        assert len(reader._segments) > 1
        await f.seek(50 * MiB)
        assert await f.read(10) == data[50 * MiB : 50 * MiB + 10]
        assert all(s.start >= 50 * MiB for s in reader._segments)


async def test_small_object_is_opened_and_read_with_one_request(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(OPEN_WINDOW)
    await put(raw_s3, bucket, "small", data)
    faults.reset()
    async with s3.open("small", "rb") as f:
        out = b"".join([c async for c in f.iter_chunks(64 * 1024)])
    assert out == data
    assert [r["op"] for r in faults.requests] == ["GetObject"]


async def test_object_up_to_a_chunk_is_read_with_one_get_after_open(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(5 * MiB)
    await put(raw_s3, bucket, "chunk", data)
    faults.reset()
    async with s3.open("chunk", "rb") as f:
        out = b"".join([c async for c in f.iter_chunks(64 * 1024)])
    assert out == data
    assert range_starts(faults) == [0, OPEN_WINDOW]
    assert [r["op"] for r in faults.requests] == ["GetObject", "GetObject"]


# -- 5. pinned to one version ---------------------------------------------------------------


async def test_every_get_after_open_carries_if_match(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    """The GET at open learns the ETag; every later GET is pinned to it."""
    await put(raw_s3, bucket, "pin", payload(12 * MiB))
    faults.reset()
    async with s3.open("pin", "rb") as f:
        await f.read()
        etag = f.etag
    opening, *gets = faults.ops("GetObject")
    assert opening["if_match"] is None
    assert gets
    assert all(r["if_match"] == f'"{etag}"' for r in gets)


async def test_object_overwritten_mid_read_raises_object_changed(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    first = payload(20 * MiB, seed=1)
    await put(raw_s3, bucket, "moving", first)
    async with s3.open("moving", "rb") as f:
        assert await f.read(1000) == first[:1000]
        await put(raw_s3, bucket, "moving", payload(20 * MiB, seed=2))
        with pytest.raises(ObjectChangedError) as info:
            while await f.read(MiB):
                pass
    assert info.value.key == "moving"


async def test_object_deleted_mid_read_raises_object_changed_or_not_found(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    await put(raw_s3, bucket, "gone", payload(20 * MiB))
    async with s3.open("gone", "rb") as f:
        await f.read(10)
        await raw_s3.delete_object(Bucket=bucket, Key="gone")
        with pytest.raises((ObjectChangedError, ObjectNotFoundError)):
            await f.seek(15 * MiB)
            await f.read(10)


# -- 6. resume -----------------------------------------------------------------------------------


async def test_dropped_body_resumes_from_the_byte_reached(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(4 * MiB)
    await put(raw_s3, bucket, "resume", data)
    faults.reset()
    faults.add(Fault(op="GetObject", truncate_after=1_000_000, skip=1))  # not the GET at open
    async with s3.open("resume", "rb") as f:
        assert await f.read() == data
    gets = faults.ops("GetObject")
    assert len(gets) == 3
    third = range_starts(faults)[2]
    assert 0 < third - OPEN_WINDOW <= 1_000_000, "the retry must start where the cut body stopped"
    assert all(r["if_match"] for r in gets[1:])


async def test_body_dropped_every_time_gives_transfer_error(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=3)
    await put(raw_s3, bucket, "flaky", payload(2 * MiB))
    faults.reset()
    faults.add(Fault(op="GetObject", truncate_after=1000, times=-1, skip=1))
    async with s3.open("flaky", "rb") as f:
        with pytest.raises(TransferError) as info:
            await f.read()
    assert info.value.attempts == 3
    assert len(faults.ops("GetObject")) == 1 + 3


async def test_server_errors_on_get_are_retried(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(MiB)
    await put(raw_s3, bucket, "retry", data)
    faults.reset()
    faults.add(Fault(op="GetObject", status=503, code="SlowDown", times=2))
    async with s3.open("retry", "rb") as f:
        assert await f.read() == data


# -- 7. close -----------------------------------------------------------------------------------


async def test_close_cancels_prefetches_and_is_idempotent(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    await put(raw_s3, bucket, "c", payload(30 * MiB))
    faults.add(Fault(op="GetObject", delay=0.3, times=-1))
    f = await s3.open("c", "rb")
    await f.read(10)
    reader: Any = f
    tasks = [s.task for s in reader._segments]
    assert tasks
    await f.close()
    await f.close()
    assert all(t.done() for t in tasks)
    with pytest.raises(ValueError, match="closed"):
        await f.read(1)


async def test_cancelling_a_read_keeps_the_reader_usable(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(3 * MiB)
    await put(raw_s3, bucket, "cr", data)
    faults.add(Fault(op="GetObject", delay=0.5, skip=1))  # not the GET at open
    async with s3.open("cr", "rb") as f:
        await f.seek(OPEN_WINDOW)
        task = asyncio.create_task(f.read(100))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await f.read(100) == data[OPEN_WINDOW : OPEN_WINDOW + 100]


# -- 8. download to a local file -----------------------------------------------------------------


async def test_get_writes_ranges_concurrently_into_the_file(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer, tmp_path: Path
) -> None:
    s3 = make_s3(max_concurrency=3)
    data = payload(26 * MiB)
    await put(raw_s3, bucket, "big", data)
    faults.reset()
    faults.add(Fault(op="GetObject", delay=0.1, times=-1))
    progress: list[int] = []
    dest = tmp_path / "big.bin"
    assert await s3.get("big", dest, progress_callback=progress.append) == len(data)
    assert dest.read_bytes() == data
    assert faults.max_in_flight["GetObject"] == 3
    assert progress == sorted(progress) and progress[-1] == len(data)
    assert sorted(os.listdir(tmp_path)) == ["big.bin"]


async def test_failed_get_leaves_no_partial_file(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer, tmp_path: Path
) -> None:
    s3 = make_s3(max_attempts=2)
    await put(raw_s3, bucket, "bad", payload(12 * MiB))
    faults.reset()
    faults.add(
        Fault(
            op="GetObject",
            status=500,
            times=-1,
            when=lambda r: r["range"] and not r["range"].startswith("bytes=0-"),
        )
    )
    dest = tmp_path / "bad.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(TransferError):
        await s3.get("bad", dest)
    assert dest.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["bad.bin"]


async def test_get_of_a_missing_key_touches_nothing(s3: AsyncS3Storage, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError):
        await s3.get("nope", tmp_path / "x")
    assert os.listdir(tmp_path) == []


async def test_get_of_an_empty_object_creates_an_empty_file(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, tmp_path: Path
) -> None:
    await put(raw_s3, bucket, "zero", b"")
    calls: list[int] = []
    assert await s3.get("zero", tmp_path / "zero", progress_callback=calls.append) == 0
    assert (tmp_path / "zero").read_bytes() == b""
    assert calls == [0]


@given(
    parts=st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=8),
    data=st.data(),
)
def test_chunks_slice_like_the_joined_bytes(parts: list[bytes], data: st.DataObject) -> None:
    """A range is kept as the pieces that arrived; any slice of it reads as the joined bytes."""
    joined = b"".join(parts)
    lo = data.draw(st.integers(0, len(joined)))
    hi = data.draw(st.integers(lo, len(joined)))
    chunks = Chunks(parts)
    assert len(chunks) == len(joined)
    pieces = list(chunks.pieces(lo, hi))
    assert b"".join(bytes(p) for p in pieces) == joined[lo:hi]
    assert all(len(p) > 0 for p in pieces)
