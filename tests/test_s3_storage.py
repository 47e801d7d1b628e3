"""AsyncS3Storage's operations, lifecycle and input checks, against moto's server."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest

from aiokeg import (
    AsyncS3Storage,
    InvalidPathError,
    ListEntry,
    ObjectInfo,
    ObjectNotFoundError,
    ShareLinkOperation,
    StorageClosedError,
    StorageError,
    TransferError,
)
from conftest import MiB, get_bytes, list_uploads, moto_only, payload, seed_objects
from s3server import Fault, FaultLayer


async def put_many(raw_s3: Any, bucket: str, keys: list[str]) -> None:
    await seed_objects(raw_s3, bucket, {k: k.encode() for k in keys})


# -- lifecycle ----------------------------------------------------------------------


async def test_constructor_does_no_io(s3_server: Any, faults: FaultLayer) -> None:
    storage = AsyncS3Storage("any-bucket", endpoint_url=s3_server.endpoint_url)
    assert faults.requests == []
    assert storage._s3._client is None
    await storage.aclose()


async def test_use_after_close_raises_a_clear_error(s3: AsyncS3Storage) -> None:
    async with s3:
        await s3.list()
    await s3.aclose()  # twice is fine
    with pytest.raises(StorageClosedError, match="closed"):
        await s3.list()
    with pytest.raises(StorageClosedError):
        s3.open("k", "rb")


async def test_connection_pool_is_sized_for_the_concurrency(make_s3: Any) -> None:
    assert make_s3(max_concurrency=16).max_connections == 64
    assert make_s3(max_connections=7).max_connections == 7
    storage = make_s3(max_concurrency=8)
    client = await storage._s3.client()
    assert client.meta.config.max_pool_connections == 32


def test_repr_names_the_bucket_and_never_the_credentials() -> None:
    storage = AsyncS3Storage("b", "us-east-1", "AKIAREPRTEST", "secret-in-repr")
    text = repr(storage)
    assert "b" in text and "AKIAREPRTEST" not in text and "secret-in-repr" not in text


# -- list / iter_list -------------------------------------------------------------------


async def test_list_returns_every_page_sorted(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    keys = [f"many/{i:05d}" for i in range(1105)] + ["other/x", "many-not/y"]
    await put_many(raw_s3, bucket, keys)
    faults.reset()
    entries = await s3.list("many/")
    assert [e.name for e in entries] == sorted(k for k in keys if k.startswith("many/"))
    assert len(faults.ops("ListObjects")) == 2
    first = entries[0]
    assert isinstance(first, ListEntry)
    assert first.size == len(b"many/00000")
    assert first.last_modified.tzinfo is not None


async def test_iter_list_yields_entries_page_by_page(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    await put_many(raw_s3, bucket, [f"p/{i:04d}" for i in range(1500)])
    faults.reset()
    seen = 0
    async for entry in s3.iter_list("p/"):
        seen += 1
        if seen == 1:
            assert len(faults.ops("ListObjects")) == 1  # lazily: one page so far
    assert seen == 1500
    assert len(faults.ops("ListObjects")) == 2


async def test_list_is_prefix_based_not_folder_based(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    await put_many(raw_s3, bucket, ["ab", "abc/d", "a/b", "b"])
    assert [e.name for e in await s3.list("ab")] == ["ab", "abc/d"]
    assert [e.name for e in await s3.list()] == ["a/b", "ab", "abc/d", "b"]
    assert await s3.list("zzz") == []


# -- stat / exists ------------------------------------------------------------------------


async def test_stat_describes_the_object(s3: AsyncS3Storage, raw_s3: Any, bucket: str) -> None:
    await raw_s3.put_object(
        Bucket=bucket, Key="s", Body=b"12345", ContentType="text/plain", Metadata={"a": "b"}
    )
    info = await s3.stat("s")
    assert isinstance(info, ObjectInfo)
    assert (info.name, info.size, info.content_type) == ("s", 5, "text/plain")
    assert info.etag == "827ccb0eea8a706c4c34a16891f84e7b"
    assert info.metadata == {"a": "b"}
    assert await s3.exists("s")
    assert not await s3.exists("t")
    with pytest.raises(ObjectNotFoundError):
        await s3.stat("t")


# -- delete / delete_many -------------------------------------------------------------------


async def test_delete_removes_one_key_and_ignores_missing(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    await put_many(raw_s3, bucket, ["d1", "d2"])
    await s3.delete("d1")
    await s3.delete("never-existed")
    assert [e.name for e in await s3.list()] == ["d2"]


async def test_delete_many_batches_by_1000_concurrently(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    keys = [f"del/{i:05d}" for i in range(2300)]
    await put_many(raw_s3, bucket, [*keys, "keep"])
    faults.reset()
    faults.add(Fault(op="DeleteObjects", delay=0.2, times=-1))
    await s3.delete_many(keys)
    assert [e.name for e in await s3.list()] == ["keep"]
    assert len(faults.ops("DeleteObjects")) == 3
    assert faults.max_in_flight["DeleteObjects"] == 3


async def test_delete_many_reports_per_key_failures(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=1)
    keys = [f"f/{i:04d}" for i in range(1500)]
    await put_many(raw_s3, bucket, keys)
    faults.reset()
    faults.add(Fault(op="DeleteObjects", status=500))
    with pytest.raises(TransferError) as info:
        await s3.delete_many(keys)
    failures = info.value.failures
    assert len(failures) in (1000, 500)
    remaining = {e.name for e in await s3.list("f/")}
    assert remaining == set(failures)


async def test_delete_many_checks_every_key_before_sending(
    s3: AsyncS3Storage, faults: FaultLayer
) -> None:
    with pytest.raises(InvalidPathError):
        await s3.delete_many(["ok", ""])
    assert faults.requests == []


# -- copy ----------------------------------------------------------------------------------------


async def test_copy_is_server_side(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    await raw_s3.put_object(Bucket=bucket, Key="src", Body=b"copied", ContentType="text/x")
    faults.reset()
    await s3.copy("src", "dst")
    assert [r["op"] for r in faults.requests] == ["HeadObject", "CopyObject"]
    assert await get_bytes(raw_s3, bucket, "dst") == b"copied"
    assert (await raw_s3.head_object(Bucket=bucket, Key="dst"))["ContentType"] == "text/x"


async def test_large_copy_uses_concurrent_part_copies(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(multipart_copy_threshold=6 * MiB, max_concurrency=3)
    data = payload(17 * MiB)
    await raw_s3.put_object(
        Bucket=bucket, Key="big", Body=data, ContentType="app/x", Metadata={"k": "v"}
    )
    faults.reset()
    faults.add(Fault(op="UploadPartCopy", delay=0.2, times=-1))
    await s3.copy("big", "big2")
    assert await get_bytes(raw_s3, bucket, "big2") == data
    assert len(faults.ops("UploadPartCopy")) == 4
    assert faults.max_in_flight["UploadPartCopy"] == 3
    assert all(
        r["headers"].get("HTTP_X_AMZ_COPY_SOURCE_IF_MATCH") for r in faults.ops("UploadPartCopy")
    )
    head = await raw_s3.head_object(Bucket=bucket, Key="big2")
    assert head["ContentType"] == "app/x" and head["Metadata"] == {"k": "v"}


async def test_failed_multipart_copy_leaves_nothing(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(multipart_copy_threshold=6 * MiB, max_attempts=2)
    await raw_s3.put_object(Bucket=bucket, Key="big", Body=payload(12 * MiB))
    faults.reset()
    faults.add(Fault(op="UploadPartCopy", status=500, times=-1, skip=1))
    with pytest.raises(TransferError):
        await s3.copy("big", "big2")
    assert not await s3.exists("big2")
    assert await list_uploads(raw_s3, bucket) == []


async def test_copy_of_a_missing_key_raises_not_found(s3: AsyncS3Storage) -> None:
    with pytest.raises(ObjectNotFoundError):
        await s3.copy("absent", "x")


# -- link_to -------------------------------------------------------------------------------------


async def test_download_link_works_with_a_plain_http_client(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    await raw_s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"shared")
    url = await s3.link_to("doc.txt", "download", timedelta(minutes=5), output_path="x/r.txt")
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert "AKIATESTACCESSKEY" in query["X-Amz-Credential"][0]
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert await response.read() == b"shared"
        assert 'filename="r.txt"' in response.headers["Content-Disposition"]


async def test_upload_link_signs_the_default_content_type(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    url = await s3.link_to(
        "up.bin", ShareLinkOperation.upload, datetime.now(timezone.utc) + timedelta(hours=1)
    )
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            url, data=b"uploaded", headers={"Content-Type": "application/octet-stream"}
        ) as response,
    ):
        assert response.status == 200
    assert await get_bytes(raw_s3, bucket, "up.bin") == b"uploaded"
    head = await raw_s3.head_object(Bucket=bucket, Key="up.bin")
    assert head["ContentType"] == "application/octet-stream"


async def test_remove_link_deletes(s3: AsyncS3Storage, raw_s3: Any, bucket: str) -> None:
    await raw_s3.put_object(Bucket=bucket, Key="rm", Body=b"x")
    url = await s3.link_to("rm", "r", 60)
    async with aiohttp.ClientSession() as http, http.delete(url) as response:
        assert response.status == 204
    assert not await s3.exists("rm")


@pytest.mark.parametrize(
    ("operation", "expire", "message"),
    [
        ("download", timedelta(seconds=-5), "past"),
        ("download", timedelta(days=7, seconds=1), "7 days"),
        ("du", 60, "one operation"),
        (ShareLinkOperation.download | ShareLinkOperation.remove, 60, "one operation"),
        ("fetch", 60, "unknown link operation"),
    ],
)
async def test_bad_link_requests_are_refused_before_any_request(
    s3: AsyncS3Storage, faults: FaultLayer, operation: Any, expire: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await s3.link_to("k", operation, expire)
    assert faults.requests == []


# -- get / put / upload / download ----------------------------------------------------------------


async def test_put_and_get_local_files(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = payload(11 * MiB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    assert await s3.put(src, "remote.bin") == len(data)
    assert await get_bytes(raw_s3, bucket, "remote.bin") == data
    assert await s3.get("remote.bin", tmp_path / "back.bin") == len(data)
    assert (tmp_path / "back.bin").read_bytes() == data


async def test_upload_and_download_report_cumulative_progress(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    data = payload(12 * MiB + 3)
    sync_calls: list[int] = []
    async_calls: list[int] = []

    async def async_progress(done: int) -> None:
        async_calls.append(done)

    assert await s3.upload(io.BytesIO(data), "up", progress_callback=sync_calls.append) == len(data)
    assert sync_calls == sorted(sync_calls) and sync_calls[-1] == len(data)
    out = io.BytesIO()
    assert await s3.download("up", out, progress_callback=async_progress) == len(data)
    assert out.getvalue() == data
    assert async_calls == sorted(async_calls) and async_calls[-1] == len(data)


async def test_upload_reads_sync_files_off_the_loop(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = payload(6 * MiB)
    (tmp_path / "f").write_bytes(data)
    with (tmp_path / "f").open("rb") as sync_file:  # blockbuster fails the test if read on the loop
        await s3.upload(sync_file, "sync", extra_args={"ContentType": "a/b"})
    assert await get_bytes(raw_s3, bucket, "sync") == data
    assert (await raw_s3.head_object(Bucket=bucket, Key="sync"))["ContentType"] == "a/b"


async def test_failed_upload_publishes_nothing(make_s3: Any, raw_s3: Any, bucket: str) -> None:
    s3 = make_s3()

    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() >= 6 * MiB:
                raise OSError("disk on fire")
            return super().read(size)

    with pytest.raises(OSError, match="disk on fire"):
        await s3.upload(Broken(payload(12 * MiB)), "half")
    assert not await s3.exists("half")
    assert await list_uploads(raw_s3, bucket) == []


# -- bad input, refused before any request ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "empty"),
        ("x" * 1025, "1025 UTF-8 bytes"),
        ("é" * 513, "1026 UTF-8 bytes"),
        ("a\x00b", "NUL"),
    ],
    ids=["empty", "too-long", "too-long-utf8", "nul"],
)
async def test_bad_keys_are_refused_before_any_request(
    s3: AsyncS3Storage, faults: FaultLayer, key: str, message: str
) -> None:
    for call in (
        lambda: s3.open(key, "rb"),
        lambda: s3.open(key, "wb"),
    ):
        with pytest.raises(InvalidPathError, match=message):
            call()
    for coro_fn in (s3.stat, s3.delete, s3.exists):
        with pytest.raises(InvalidPathError, match=message):
            await coro_fn(key)
    with pytest.raises(InvalidPathError):
        await s3.copy("ok", key)
    assert faults.requests == []


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("rt", "text mode"),
        ("ab", "appended"),
        ("r+b", "appended"),
        ("rw", "not both"),
        ("q", "unknown"),
        ("", "invalid"),
    ],
)
async def test_bad_modes_are_refused_with_what_to_use(
    s3: AsyncS3Storage, faults: FaultLayer, mode: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        s3.open("k", mode)
    assert faults.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_size": 5 * MiB - 1}, "chunk_size"),
        ({"chunk_size": 5 * 1024 * MiB + 1}, "chunk_size"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
async def test_bad_settings_are_refused_in_open_and_in_the_constructor(
    s3: AsyncS3Storage, faults: FaultLayer, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        s3.open("k", "wb", **kwargs)
    with pytest.raises(ValueError, match=message):
        AsyncS3Storage("b", **kwargs)
    assert faults.requests == []


async def test_extra_args_are_refused_for_reads(s3: AsyncS3Storage) -> None:
    with pytest.raises(ValueError, match="writes"):
        s3.open("k", "rb", {"ContentType": "x"})


# -- error translation ----------------------------------------------------------------------------


async def test_errors_carry_bucket_key_and_cause(s3: AsyncS3Storage, bucket: str) -> None:
    with pytest.raises(ObjectNotFoundError) as info:
        await s3.stat("nothing/here")
    err = info.value
    assert (err.bucket, err.key, err.operation) == (bucket, "nothing/here", "HeadObject")
    assert err.__cause__ is not None
    assert f"s3://{bucket}/nothing/here" in str(err)


async def test_server_errors_on_simple_calls_are_retried_then_reported(
    make_s3: Any, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=3)
    faults.add(Fault(op="ListObjects", status=503, code="SlowDown", times=2))
    assert await s3.list() == []
    faults.add(Fault(op="ListObjects", status=500, times=-1))
    with pytest.raises(TransferError, match="3 attempt"):
        await s3.list()


async def test_missing_bucket_is_named(make_s3: Any) -> None:
    s3 = make_s3(bucket="absent-bucket-x")
    with pytest.raises(StorageError, match="absent-bucket-x.*does not exist"):
        await s3.list()


@moto_only("moto dates every upload 2010-11-10, which the age filter relies on")
async def test_incomplete_uploads_are_listed_and_aborted_by_age(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    from datetime import timedelta

    for key in ("crash/a", "crash/b", "other/c"):
        await raw_s3.create_multipart_upload(Bucket=bucket, Key=key)
    found = await s3.list_incomplete_uploads("crash/")
    assert sorted(u.key for u in found) == ["crash/a", "crash/b"]
    # moto dates every upload 2010-11-10, so thirty years spares them all.
    assert await s3.abort_incomplete_uploads("crash/", older_than=timedelta(days=30 * 365)) == []
    aborted = await s3.abort_incomplete_uploads("crash/", older_than=timedelta(hours=1))
    assert sorted(u.key for u in aborted) == ["crash/a", "crash/b"]
    assert [u["Key"] for u in await list_uploads(raw_s3, bucket)] == ["other/c"]


async def test_listing_on_the_data_path_decodes_keys_as_botocore_does(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    odd = ["a b+c", "ünï/cødé", "x%2Fy", "q?r&s=t", "tab\there", "<xml>&amp;"]
    for key in odd:
        await raw_s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    ours = await s3.list()
    theirs = (await raw_s3.list_objects_v2(Bucket=bucket))["Contents"]
    assert [e.name for e in ours] == [item["Key"] for item in theirs]
    assert [e.last_modified for e in ours] == [item["LastModified"] for item in theirs]
    assert [e.etag for e in ours] == [item["ETag"].strip('"') for item in theirs]
