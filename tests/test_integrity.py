"""Upload integrity that can never destroy data (issue: opaque ETags deleted objects).

moto's fault layer answers like an encrypting server: opaque ETags (32 hex
digits that are not MD5s), with ``x-amz-server-side-encryption: aws:kms`` as
AWS says for SSE-KMS ("announced"), or without it as some S3-compatible
servers do ("silent"; those validate ``Content-MD5``, emulated by the layer).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from aiokeg import AsyncS3Storage, StorageError, TransferError
from aiokeg.s3._integrity import etag_is_md5
from conftest import MiB, get_bytes, list_uploads, payload
from s3server import Fault, FaultLayer

OLD = b"the previous version, which the caller chose to replace"


def _kms(faults: FaultLayer, mode: str) -> None:
    faults.requests.clear()  # count only what follows
    faults.opaque_etags = mode
    # Servers with opaque ETags validate Content-MD5 (AWS, MinIO, RGW do).
    faults.check_md5 = mode == "silent"


@pytest.mark.parametrize("mode", ["announced", "silent"])
@pytest.mark.parametrize("size", [11, 21 * MiB], ids=["single-put", "multipart"])
async def test_write_over_existing_key_with_opaque_etags_keeps_exactly_the_new_bytes(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer, mode: str, size: int
) -> None:
    await raw_s3.put_object(Bucket=bucket, Key="k", Body=OLD)
    _kms(faults, mode)
    data = payload(size, seed=size)
    async with s3.open("k", "wb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "k") == data
    async with s3.open("k", "rb") as r:
        assert await r.read() == data
    assert await list_uploads(raw_s3, bucket) == []
    assert not faults.ops("DeleteObject"), "an integrity check deleted an object"
    puts = faults.ops("PutObject") + faults.ops("UploadPart")
    expected = 1 if size < 5 * MiB else 5
    # A silent server costs one probe per storage, refused with BadDigest.
    assert len(puts) == expected + (mode == "silent")


@pytest.mark.parametrize("mode", ["announced", "silent"])
@pytest.mark.parametrize("size", [0, 11, 11 * MiB], ids=["empty", "single-put", "multipart"])
async def test_exclusive_create_with_opaque_etags(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer, mode: str, size: int
) -> None:
    _kms(faults, mode)
    data = payload(size, seed=3)
    async with s3.open("new", "xb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "new") == data
    assert not faults.ops("DeleteObject")


async def test_silent_server_is_probed_once_per_storage(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    _kms(faults, "silent")
    for i in range(3):
        async with s3.open(f"k{i}", "wb") as f:
            await f.write(b"x" * (i + 1))
    puts = faults.ops("PutObject")
    assert len(puts) == 4
    assert sum(1 for r in puts if r["key"] == "k0") == 2


async def test_validating_server_refuses_damaged_part_and_the_retry_fixes_it(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    _kms(faults, "silent")
    faults.add(Fault(op="UploadPart", corrupt_request=True, when=lambda r: r["part_number"] == 2))
    data = payload(12 * MiB, seed=5)
    async with s3.open("k", "wb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "k") == data


async def test_damaged_every_time_over_existing_key_is_left_for_the_caller(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    """moto validates nothing: the damage is published; aiokeg says so and deletes nothing."""
    s3 = make_s3(max_attempts=2)
    await raw_s3.put_object(Bucket=bucket, Key="k", Body=OLD)
    faults.requests.clear()
    faults.add(Fault(op="PutObject", corrupt_request=True, times=-1))
    with pytest.raises(TransferError, match="left in place"):
        async with s3.open("k", "wb") as f:
            await f.write(payload(1000))
    assert not faults.ops("DeleteObject")
    # Every retry was pinned to the version aiokeg itself had just stored.
    assert all(r["if_match"] for r in faults.ops("PutObject")[1:])


async def test_damaged_every_time_on_exclusive_create_is_removed(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    s3 = make_s3(max_attempts=2)
    faults.add(Fault(op="PutObject", corrupt_request=True, times=-1))
    with pytest.raises(TransferError, match="removed"):
        async with s3.open("x", "xb") as f:
            await f.write(payload(1000))
    response = await raw_s3.list_objects_v2(Bucket=bucket)
    assert response.get("KeyCount", 0) == 0
    assert all(r["if_match"] for r in faults.ops("DeleteObject"))


async def test_retry_never_overwrites_another_writers_version(
    make_s3: Any, raw_s3: Any, bucket: str, faults: FaultLayer
) -> None:
    """Between a damaged PUT and its repair another writer stores its own object: it stays."""
    s3 = make_s3(max_attempts=3)
    other = b"another writer's object"
    faults.add(Fault(op="PutObject", corrupt_request=True, when=lambda r: not r["if_match"]))

    state = {"done": False}

    def before_repair(record: dict[str, Any]) -> bool:
        if record["if_match"] and not state["done"]:
            state["done"] = True
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.s3.models import s3_backends

            s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, "k", other)
        return False

    faults.add(Fault(op="PutObject", when=before_repair))
    with pytest.raises(StorageError):
        async with s3.open("k", "wb") as f:
            await f.write(payload(1000))
    assert await get_bytes(raw_s3, bucket, "k") == other


def test_etag_is_md5_only_when_no_encryption_makes_it_opaque() -> None:
    md5 = '"' + hashlib.md5(b"x").hexdigest() + '"'
    assert etag_is_md5({"ETag": md5})
    assert etag_is_md5({"ETag": md5, "ServerSideEncryption": "AES256"})
    assert not etag_is_md5({"ETag": md5, "ServerSideEncryption": "aws:kms"})
    assert not etag_is_md5({"ETag": md5, "ServerSideEncryption": "aws:kms:dsse"})
    assert not etag_is_md5({"ETag": md5, "SSECustomerAlgorithm": "AES256"})
    assert not etag_is_md5({"ETag": '"abc123"'})
    assert not etag_is_md5({"ETag": ""})


@pytest.mark.parametrize("size", [11, 6 * MiB], ids=["single-put", "multipart"])
async def test_sse_c_write_with_opaque_etags_keeps_the_new_bytes(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer, size: int
) -> None:
    """SSE-C objects answer opaque ETags (and name the customer algorithm)."""
    await raw_s3.put_object(Bucket=bucket, Key="k", Body=OLD)
    faults.opaque_etags = "silent"
    key = b"k" * 32
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key.decode()}
    data = payload(size, seed=9)
    async with s3.open("k", "wb", extra_args=sse) as f:
        await f.write(data)
    response = await raw_s3.get_object(Bucket=bucket, Key="k", **sse)
    async with response["Body"] as body:
        assert await body.read() == data
    assert not faults.ops("DeleteObject")
