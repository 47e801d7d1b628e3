"""Peak memory of one writer / one reader stays within (max_concurrency + 1) × chunk_size.

Each transfer runs in its own process (the server stays in the test process),
so the client's peak RSS is its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, MiB, seed_objects

pytestmark = pytest.mark.slow

HERE = os.path.dirname(__file__)
SIZE_MIB = 256
CHUNK_MIB = 8
CONCURRENCY = 4
BOUND_MIB = (CONCURRENCY + 1) * CHUNK_MIB + 64


def expected_md5() -> str:
    block = bytes(range(256)) * (MiB // 256)
    digest = hashlib.md5()
    for i in range(SIZE_MIB):
        digest.update(i.to_bytes(8, "big") + block[8:])
    return digest.hexdigest()


async def run_client(*args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        os.path.join(HERE, "rss_client.py"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "AIOKEG_TEST_ACCESS_KEY": ACCESS_KEY,
            "AIOKEG_TEST_SECRET_KEY": SECRET_KEY,
        },
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    print(f"{args[0]}: peak RSS growth {result['growth_mib']:.1f} MiB (bound {BOUND_MIB} MiB)")
    return result


async def test_writer_peak_memory_is_bounded(s3_server: Any, bucket: str, raw_s3: Any) -> None:
    result = await run_client(
        "write",
        s3_server.endpoint_url,
        bucket,
        "big",
        str(SIZE_MIB),
        str(CHUNK_MIB),
        str(CONCURRENCY),
    )
    assert result["bytes"] == SIZE_MIB * MiB
    head = await raw_s3.head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == SIZE_MIB * MiB
    assert result["growth_mib"] < BOUND_MIB


async def test_reader_peak_memory_is_bounded(s3_server: Any, bucket: str, raw_s3: Any) -> None:
    block = bytes(range(256)) * (MiB // 256)
    data = b"".join(i.to_bytes(8, "big") + block[8:] for i in range(SIZE_MIB))
    await seed_objects(raw_s3, bucket, {"big": data})
    del data
    result = await run_client(
        "read",
        s3_server.endpoint_url,
        bucket,
        "big",
        str(SIZE_MIB),
        str(CHUNK_MIB),
        str(CONCURRENCY),
    )
    assert result["bytes"] == SIZE_MIB * MiB
    assert result["md5"] == expected_md5()
    assert result["growth_mib"] < BOUND_MIB
