"""Bulk transfers: per-file results, one memory budget, sync."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from aiokeg import AsyncLocalStorage, AsyncMemoryStorage, AsyncS3Storage
from aiokeg.transfer import copy_many, sync
from conftest import MiB, payload

HERE = os.path.dirname(__file__)


async def fill(storage: Any, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        async with storage.open(key, "wb") as f:
            await f.write(data)


async def test_sync_local_to_s3_and_back(s3: AsyncS3Storage, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    files = {f"d{i % 3}/f{i}": payload(i * 50_000, seed=i) for i in range(12)}
    files["big"] = payload(11 * MiB)
    async with (
        AsyncLocalStorage(tmp_path / "src") as src,
        AsyncLocalStorage(tmp_path / "dst") as dst,
    ):
        await fill(src, files)
        events: list[Any] = []
        up = await sync(src, s3, dst_prefix="backup/", on_progress=events.append)
        assert len(up.copied) == len(files)
        assert not up.failures
        assert events[-1].files_done == len(files)
        assert events[-1].bytes_done == sum(map(len, files.values()))
        down = await sync(s3, dst, src_prefix="backup/")
        assert len(down.copied) == len(files)
        for key, data in files.items():
            assert (tmp_path / "dst" / key).read_bytes() == data
        again = await sync(src, s3, dst_prefix="backup/")
        assert again.copied == []
        assert len(again.results) == len(files)


async def test_sync_copies_changes_and_deletes_extras_on_request() -> None:
    src, dst = AsyncMemoryStorage(), AsyncMemoryStorage()
    await fill(src, {"a": b"1", "b": b"2"})
    await sync(src, dst)
    await fill(src, {"a": b"changed"})
    await fill(dst, {"extra": b"x"})
    report = await sync(src, dst, delete=True)
    assert [r.source for r in report.copied] == ["a"]
    assert report.deleted == ["extra"]
    assert sorted(e.name for e in await dst.list()) == ["a", "b"]


async def test_one_failure_does_not_lose_the_others(tmp_path: Path) -> None:
    src, dst = AsyncMemoryStorage(), AsyncMemoryStorage()
    await fill(src, {f"k{i}": b"data" for i in range(5)})
    pairs = [(f"k{i}", f"k{i}") for i in range(5)] + [("missing", "missing")]
    report = await copy_many(src, dst, pairs)
    assert len(report.copied) == 5
    assert [r.source for r in report.failures] == ["missing"]
    assert isinstance(report.failures[0].error, FileNotFoundError)
    assert "1 failed" in report.summary()


async def test_fail_fast_stops_starting_new_files() -> None:
    src, dst = AsyncMemoryStorage(), AsyncMemoryStorage()
    await fill(src, {f"k{i}": b"x" for i in range(3)})
    pairs = [("missing", "m")] + [(f"k{i}", f"k{i}") for i in range(3)]
    report = await copy_many(src, dst, pairs, fail_fast=True, max_bytes_in_flight=1)
    assert len(report.failures) == 4
    assert await dst.list() == []


@pytest.mark.slow
async def test_a_thousand_files_stay_within_the_budget(tmp_path: Path) -> None:
    """Peak memory of a 1,000-file copy is bounded by the budget, not the file count."""
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        os.path.join(HERE, "transfer_client.py"),
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    files, growth_mib, budget_mib = out.decode().split()
    print(f"1,000 files: peak RSS growth {float(growth_mib):.1f} MiB, budget {budget_mib} MiB")
    assert int(files) == 1000
    assert float(growth_mib) < float(budget_mib) + 64


async def test_s3_to_s3_on_the_same_service_copies_server_side(
    make_s3: Any, raw_s3: Any, bucket: str, faults: Any
) -> None:
    await raw_s3.create_bucket(Bucket=f"{bucket}-dst")
    src = make_s3()
    dst = make_s3(bucket=f"{bucket}-dst", multipart_copy_threshold=6 * MiB)
    files = {"a": payload(1000), "big": payload(13 * MiB)}
    await fill(src, files)
    faults.reset()
    report = await sync(src, dst, dst_prefix="copy/")
    assert len(report.copied) == 2
    assert report.bytes_copied == sum(map(len, files.values()))
    assert faults.ops("GetObject") == []  # nothing passed through the client
    assert len(faults.ops("CopyObject")) == 1
    assert len(faults.ops("UploadPartCopy")) >= 2
    async with dst.open("copy/big", "rb") as f:
        assert await f.read() == files["big"]


@pytest.mark.parametrize(("budget", "expected"), [(256 * MiB, 32), (10 * 128 * 1024, 10)])
async def test_small_files_share_the_budget_by_their_size(
    make_s3: Any, faults: Any, budget: int, expected: int
) -> None:
    """A small file reserves what it holds (2 x 64 KiB at least), so many run at once."""
    from s3server import Fault

    s3 = make_s3(max_connections=64)
    src = AsyncMemoryStorage()
    files = {f"f{i}": payload(1000, seed=i) for i in range(40)}
    await fill(src, files)
    faults.add(Fault(op="PutObject", delay=0.2, times=-1))
    report = await copy_many(
        src, s3, [(k, k, len(v)) for k, v in files.items()], max_bytes_in_flight=budget
    )
    assert not report.failures
    assert faults.max_in_flight["PutObject"] == expected
    async with s3.open("f7", "rb") as f:
        assert await f.read() == files["f7"]


@pytest.fixture(scope="module")
def other_service() -> Any:
    """A second, separate S3 service (moto on its own port), for cross-service copies."""
    from s3server import S3TestServer

    server = S3TestServer().start()
    yield server
    server.stop()


async def test_copy_between_services_keeps_headers_and_metadata(
    other_service: Any, s3: AsyncS3Storage, raw_s3: Any, bucket: str
) -> None:
    """moto -> the suite's server (moto, or Ceph RGW in `nox -s rgw`): HEADs agree."""
    from conftest import ACCESS_KEY, SECRET_KEY

    stored = {
        "ContentType": "text/html; charset=utf-8",
        "ContentEncoding": "gzip",
        "CacheControl": "max-age=60",
        "ContentDisposition": 'attachment; filename="r.html"',
        "Metadata": {"owner": "team-a", "run": "42"},
    }
    async with AsyncS3Storage(
        "source",
        "us-east-1",
        ACCESS_KEY,
        SECRET_KEY,
        endpoint_url=other_service.endpoint_url,
        retry_base_delay=0.01,
    ) as src:
        await (await src._s3.client()).create_bucket(Bucket="source")
        for key, size in (("small.html", 1000), ("big.html", 6 * MiB)):
            async with src.open(key, "wb", stored) as f:
                await f.write(payload(size))
        assert not s3.same_service(src)
        report = await copy_many(
            src, s3, [("small.html", "s"), ("big.html", "b")], chunk_size=5 * MiB
        )
        assert not report.failures
    for key in ("s", "b"):
        head = await raw_s3.head_object(Bucket=bucket, Key=key)
        assert {k: head.get(k) for k in stored} == stored
