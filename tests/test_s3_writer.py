"""The S3 writer's contract (DESIGN §2), against moto's server over HTTP."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import warnings
from typing import Any

import pytest

from aiokeg import (
    AsyncS3Storage,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageError,
    TransferError,
)
from conftest import MiB, get_bytes, list_uploads, payload
from s3server import Fault, FaultLayer


async def assert_absent(raw_s3: Any, bucket: str, key: str) -> None:
    """No object under ``key`` and no incomplete upload in the bucket."""
    response = await raw_s3.list_objects_v2(Bucket=bucket, Prefix=key)
    assert response.get("KeyCount", 0) == 0, "a partial object was published"
    assert await list_uploads(raw_s3, bucket) == [], "an incomplete upload was left behind"


# -- 1. write() ------------------------------------------------------------------


async def test_write_accepts_any_bytes_like_and_returns_its_length(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    import array

    async with s3.open("k", "wb") as f:
        assert await f.write(b"abc") == 3
        assert await f.write(bytearray(b"de")) == 2
        assert await f.write(memoryview(b"xfgx")[1:3]) == 2
        assert await f.write(array.array("B", [104, 105])) == 2
        assert await f.tell() == 9
    assert await get_bytes(raw_s3, bucket, "k") == b"abcdefghi"


async def test_write_refuses_str(s3: AsyncS3Storage, raw_s3: Any, bucket: str) -> None:
    with pytest.raises(TypeError, match="encode"):
        async with s3.open("k", "wb") as f:
            await f.write("text")  # type: ignore[arg-type]
    await assert_absent(raw_s3, bucket, "k")


# -- 2. lazy multipart, single PutObject, empty objects --------------------------------


async def test_zero_bytes_written_create_an_empty_object(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    async with s3.open("empty", "wb"):
        pass
    assert await get_bytes(raw_s3, bucket, "empty") == b""
    assert len(faults.ops("PutObject")) == 1
    assert faults.ops("CreateMultipartUpload") == []


async def test_object_of_exactly_one_part_is_one_put(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(5 * MiB)
    async with s3.open("one", "wb") as f:
        await f.write(data)
    assert [r["op"] for r in faults.requests] == ["PutObject"]
    assert await get_bytes(raw_s3, bucket, "one") == data


async def test_multipart_starts_only_when_the_first_part_overflows(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(5 * MiB + 1)
    async with s3.open("two", "wb") as f:
        await f.write(data[: 5 * MiB])
        assert faults.ops("CreateMultipartUpload") == []
        await f.write(data[5 * MiB :])
        assert len(faults.ops("CreateMultipartUpload")) == 1
    assert await get_bytes(raw_s3, bucket, "two") == data
    assert sorted(r["part_number"] for r in faults.ops("UploadPart")) == [1, 2]
    # No "Expect: 100-continue": it costs a round trip per part, and a server
    # stalling before the 100 would hang aiohttp with no timeout.
    assert not any("HTTP_EXPECT" in r["headers"] for r in faults.requests)
    assert faults.ops("PutObject") == []


# -- 3. bounded concurrency and back-pressure -----------------------------------------


async def test_parts_in_flight_reach_the_bound_and_never_exceed_it(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_concurrency=3)
    faults.add(Fault(op="UploadPart", delay=0.3, times=-1))
    data = payload(8 * 5 * MiB + 123)
    async with s3.open("bounded", "wb") as f:
        for i in range(0, len(data), MiB):
            await f.write(data[i : i + MiB])
    assert faults.max_in_flight["UploadPart"] == 3
    assert await get_bytes(raw_s3, bucket, "bounded") == data


async def test_write_waits_when_the_bound_is_reached(make_s3: Any, faults: FaultLayer) -> None:
    s3 = make_s3(max_concurrency=2)
    release = asyncio.Event()
    faults.add(Fault(op="UploadPart", delay=0.5, times=-1))
    async with s3.open("bp", "wb") as f:
        # Parts 1 and 2 fill the two slots; writing part 4's first byte needs
        # part 3 to go out, which must wait for a slot.
        await f.write(payload(15 * MiB))
        started = asyncio.get_running_loop().time()
        await f.write(b"x")
        waited = asyncio.get_running_loop().time() - started
    release.set()
    assert waited > 0.2, "write() did not wait for a free slot"


# -- 4. parts finish out of order; Complete lists them sorted ---------------------------


async def test_parts_finishing_out_of_order_still_give_the_exact_object(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    faults.add(Fault(op="UploadPart", when=lambda r: r["part_number"] == 1, delay=1.0))
    data = payload(3 * 5 * MiB + 7)
    async with s3.open("ordered", "wb") as f:
        await f.write(data)
    parts = faults.ops("UploadPart")
    finished = sorted(parts, key=lambda r: r["end"])
    assert finished[-1]["part_number"] == 1, "part 1 should have finished last"
    assert await get_bytes(raw_s3, bucket, "ordered") == data


# -- 5. close() --------------------------------------------------------------------------


async def test_close_is_idempotent_and_write_after_close_raises(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    f = await s3.open("k", "wb")
    await f.write(b"data")
    await f.close()
    await f.close()
    assert len(faults.ops("PutObject")) == 1
    with pytest.raises(ValueError, match="closed"):
        await f.write(b"more")
    assert await get_bytes(raw_s3, bucket, "k") == b"data"


# -- 6./7. abort, exceptions, cancellation, garbage collection ------------------------------


async def test_abort_cancels_parts_and_aborts_the_upload(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    faults.add(Fault(op="UploadPart", delay=0.5, times=-1))
    f = await s3.open("aborted", "wb")
    await f.write(payload(11 * MiB))
    assert len(await list_uploads(raw_s3, bucket)) == 1
    await f.abort()
    assert f.state == "aborted"
    await asyncio.sleep(0.6)  # let the server finish the delayed parts
    await assert_absent(raw_s3, bucket, "aborted")
    assert len(faults.ops("AbortMultipartUpload")) == 1
    with pytest.raises(ValueError):
        await f.write(b"x")


async def test_exception_inside_async_with_aborts_upload(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with s3.open("partial", "wb") as f:
            await f.write(payload(12 * MiB))
            raise RuntimeError("boom")
    await assert_absent(raw_s3, bucket, "partial")


async def test_exception_before_first_part_publishes_nothing(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    with pytest.raises(RuntimeError):
        async with s3.open("small", "wb") as f:
            await f.write(b"abc")
            raise RuntimeError("boom")
    await assert_absent(raw_s3, bucket, "small")
    assert faults.ops("PutObject") == []


async def test_cancellation_inside_async_with_aborts_upload(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    faults.add(Fault(op="UploadPart", delay=0.3, times=-1))
    started = asyncio.Event()

    async def writer() -> None:
        async with s3.open("cancelled", "wb") as f:
            for i in range(40):
                await f.write(payload(MiB, seed=i))
                if i == 12:
                    started.set()

    task = asyncio.create_task(writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.4)
    await assert_absent(raw_s3, bucket, "cancelled")
    assert len(faults.ops("AbortMultipartUpload")) == 1


async def test_cancellation_during_close_still_aborts(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    faults.add(Fault(op="UploadPart", delay=0.5, times=-1))

    async def writer() -> None:
        async with s3.open("cancel-close", "wb") as f:
            await f.write(payload(11 * MiB))

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.2)  # inside close(), waiting for the parts
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.6)
    await assert_absent(raw_s3, bucket, "cancel-close")
    assert faults.ops("CompleteMultipartUpload") == []


async def test_writer_garbage_collected_while_open_warns_and_never_commits(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    f = await s3.open("leaked", "wb")
    await f.write(payload(6 * MiB))
    while f._tasks:  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del f
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    await s3.aclose()  # waits for the background abort
    await assert_absent(raw_s3, bucket, "leaked")
    assert faults.ops("CompleteMultipartUpload") == []


async def test_small_writer_garbage_collected_publishes_nothing(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    f = await s3.open("leaked-small", "wb")
    await f.write(b"abc")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del f
        gc.collect()
    assert [w.category for w in caught] == [ResourceWarning]
    await assert_absent(raw_s3, bucket, "leaked-small")


# -- 8. retries, then failure that surfaces and aborts -------------------------------------


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalError"), (503, "SlowDown")], ids=["500", "503"]
)
async def test_failed_part_is_retried(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer, status: int, code: str
) -> None:
    faults.add(Fault(op="UploadPart", status=status, code=code, times=2))
    data = payload(11 * MiB)
    async with s3.open("retried", "wb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "retried") == data
    assert len(faults.ops("UploadPart")) == 3 + 2


async def test_part_whose_connection_drops_is_retried(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    # The part reaches the server but the connection is reset before the
    # answer: the client must send it again.
    faults.add(Fault(op="UploadPart", reset=True))
    data = payload(6 * MiB)
    async with s3.open("reset", "wb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "reset") == data
    assert len(faults.ops("UploadPart")) == 3


async def test_part_failing_every_attempt_aborts_and_surfaces_transfer_error(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=3)
    faults.add(Fault(op="UploadPart", status=500, times=-1, when=lambda r: r["part_number"] == 2))
    with pytest.raises(TransferError) as info:
        async with s3.open("doomed", "wb") as f:
            for i in range(4):
                await f.write(payload(5 * MiB, seed=i))
                await asyncio.sleep(0.2)
    err = info.value
    assert isinstance(err, StorageError)
    assert err.bucket == bucket and err.key == "doomed" and err.part_number == 2
    assert err.__cause__ is not None
    assert "part 2" in str(err)
    assert len([r for r in faults.ops("UploadPart") if r["part_number"] == 2]) == 3
    await assert_absent(raw_s3, bucket, "doomed")


async def test_part_failure_surfaces_from_close(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=2)
    faults.add(Fault(op="UploadPart", status=503, code="SlowDown", times=-1))
    f = await s3.open("doomed2", "wb")
    await f.write(payload(6 * MiB))
    with pytest.raises(TransferError, match=r"part [12] of"):
        await f.close()
    assert f.state == "failed"
    await assert_absent(raw_s3, bucket, "doomed2")


async def test_failed_complete_aborts_the_upload(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=2)
    faults.add(Fault(op="CompleteMultipartUpload", status=500, times=-1))
    with pytest.raises(TransferError):
        async with s3.open("nocomplete", "wb") as f:
            await f.write(payload(6 * MiB))
    await assert_absent(raw_s3, bucket, "nocomplete")


# -- 9. integrity ------------------------------------------------------------------------------


async def test_part_damaged_in_flight_is_detected_and_resent(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    faults.add(Fault(op="UploadPart", corrupt_request=True, when=lambda r: r["part_number"] == 2))
    data = payload(12 * MiB)
    async with s3.open("intact", "wb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "intact") == data
    assert [r["part_number"] for r in faults.ops("UploadPart")].count(2) == 2
    assert all(r["content_md5"] for r in faults.ops("UploadPart"))


async def test_part_damaged_on_every_attempt_fails_cleanly(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=2)
    faults.add(Fault(op="UploadPart", corrupt_request=True, times=-1))
    with pytest.raises(TransferError, match="damaged in flight"):
        async with s3.open("corrupt", "wb") as f:
            await f.write(payload(6 * MiB))
    await assert_absent(raw_s3, bucket, "corrupt")


async def test_single_put_damaged_in_flight_is_replaced_with_the_right_bytes(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    faults.add(Fault(op="PutObject", corrupt_request=True))
    data = payload(100_000)
    async with s3.open("small-intact", "wb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "small-intact") == data


async def test_md5_check_can_be_turned_off(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(verify_md5=False)
    data = payload(6 * MiB)
    async with s3.open("nomd5", "wb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "nomd5") == data
    assert not any(r["content_md5"] for r in faults.requests)


# -- 10. limits (sizing is unit-tested in test_parts.py) -----------------------------------------


async def test_size_hint_chooses_a_larger_part_size(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    data = payload(13 * MiB)
    # A hint of 100 GB needs parts of at least 10 MiB (100 GB / 10,000 parts).
    async with s3.open("hinted", "wb", size_hint=100 * 10**9) as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "hinted") == data
    assert len(faults.ops("UploadPart")) == 2


# -- 11. extra_args --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 6 * MiB], ids=["put", "multipart"])
async def test_extra_args_reach_the_object(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, size: int
) -> None:
    extra = {
        "ContentType": "text/csv",
        "Metadata": {"owner": "ops"},
        "ContentEncoding": "identity",
    }
    async with s3.open("extra", "wb", extra) as f:
        await f.write(payload(size))
    head = await raw_s3.head_object(Bucket=bucket, Key="extra")
    assert head["ContentType"] == "text/csv"
    assert head["Metadata"] == {"owner": "ops"}
    assert head["ContentEncoding"] == "identity"


# -- 12. exclusive create -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 6 * MiB], ids=["put", "multipart"])
async def test_exclusive_create_writes_a_new_key(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer, size: int
) -> None:
    data = payload(size)
    async with s3.open("new", "xb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "new") == data
    final = faults.ops("PutObject" if size < 5 * MiB else "CompleteMultipartUpload")
    assert final[-1]["if_none_match"] == "*"


async def test_exclusive_create_refuses_an_existing_key_at_open(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    await raw_s3.put_object(Bucket=bucket, Key="taken", Body=b"original")
    with pytest.raises(ObjectExistsError) as info:
        await s3.open("taken", "xb")
    assert isinstance(info.value, FileExistsError)
    assert await get_bytes(raw_s3, bucket, "taken") == b"original"


@pytest.mark.parametrize("size", [10, 6 * MiB], ids=["put", "multipart"])
async def test_exclusive_create_loses_a_race_without_harm(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, size: int
) -> None:
    f = await s3.open("race", "xb")
    await f.write(payload(size))
    await raw_s3.put_object(Bucket=bucket, Key="race", Body=b"winner")
    with pytest.raises(ObjectExistsError):
        await f.close()
    assert await get_bytes(raw_s3, bucket, "race") == b"winner"
    assert await list_uploads(raw_s3, bucket) == []


# -- errors ---------------------------------------------------------------------------------------


async def test_writing_to_a_missing_bucket_names_the_bucket(make_s3: Any) -> None:
    s3 = make_s3(bucket="no-such-bucket-here")
    with pytest.raises(StorageError, match="no-such-bucket-here") as info:
        async with s3.open("k", "wb") as f:
            await f.write(b"x")
    assert not isinstance(info.value, ObjectNotFoundError)


async def test_etags_sent_to_complete_match_the_parts(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    data = payload(11 * MiB)
    async with s3.open("etag", "wb") as f:
        await f.write(data)
    head = await raw_s3.head_object(Bucket=bucket, Key="etag")
    digests = [hashlib.md5(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    expected = hashlib.md5(b"".join(digests)).hexdigest() + "-3"
    assert head["ETag"].strip('"') == expected


async def test_object_past_the_size_limit_fails_before_publishing(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real limit is 5 TiB; the check is the same at any size.
    monkeypatch.setattr("aiokeg.s3._writer.MAX_OBJECT_SIZE", 7 * MiB)
    with pytest.raises(StorageError, match="5 TiB object limit"):
        async with s3.open("huge", "wb") as f:
            await f.write(payload(6 * MiB))
            await f.write(payload(2 * MiB))
    await assert_absent(raw_s3, bucket, "huge")


async def test_running_out_of_part_numbers_fails_before_publishing(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aiokeg.s3._writer.MAX_PARTS", 2)
    with pytest.raises(StorageError, match="more than 2 parts"):
        async with s3.open("many-parts", "wb") as f:
            await f.write(payload(16 * MiB))
    await assert_absent(raw_s3, bucket, "many-parts")


async def test_lost_create_answer_leaves_no_orphaned_upload(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    # The server starts an upload, then the answer is lost: the retry starts a
    # second one. The first must not stay behind.
    faults.add(Fault(op="CreateMultipartUpload", reset=True))
    data = payload(6 * MiB)
    async with s3.open("orphan", "wb") as f:
        await f.write(data)
    assert len(faults.ops("CreateMultipartUpload")) == 2
    assert await get_bytes(raw_s3, bucket, "orphan") == data
    assert await list_uploads(raw_s3, bucket) == []


async def test_buffers_reused_after_write_do_not_change_what_is_sent(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    """Bytes are kept without a copy; a mutable buffer is copied before write() returns."""
    original = payload(7 * MiB)
    buffer = bytearray(original)
    async with s3.open("reused", "wb") as f:
        await f.write(memoryview(buffer).toreadonly()[: 3 * MiB])
        await f.write(buffer[3 * MiB :])
        buffer[:] = bytes(len(buffer))  # the caller reuses its buffer
        await f.write(b"tail")
    assert await get_bytes(raw_s3, bucket, "reused") == original + b"tail"
