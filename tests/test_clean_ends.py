"""Interrupted downloads leave nothing behind: no temporary file, whatever the moment."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aiokeg import AsyncLocalStorage, AsyncS3Storage
from conftest import ACCESS_KEY, SECRET_KEY, MiB, payload
from s3server import Fault, FaultLayer


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


async def test_cancelled_downloads_leave_no_temporary_file(
    s3: AsyncS3Storage, raw_s3: Any, bucket: str, faults: FaultLayer, tmp_path: Path
) -> None:
    data = payload(12 * MiB)
    await raw_s3.put_object(Bucket=bucket, Key="big", Body=data)
    faults.add(Fault(op="GetObject", delay=0.02, times=-1))
    rng = random.Random(7)
    for i in range(30):
        task = asyncio.create_task(s3.get("big", tmp_path / f"out{i}.bin"))
        await asyncio.sleep(rng.uniform(0, 0.15))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            # A cancellation that lands while the file is being put in place
            # lets that finish (shielded): the file is then whole.
            done = tmp_path / f"out{i}.bin"
            assert not done.exists() or done.read_bytes() == data
    assert all(not name.startswith(".") for name in leftovers(tmp_path))


async def test_cancelled_local_writes_leave_no_temporary_file(tmp_path: Path) -> None:
    rng = random.Random(3)
    async with AsyncLocalStorage(tmp_path) as storage:
        for i in range(50):

            async def write(i: int = i) -> None:
                async with storage.open(f"d/f{i}", "wb") as f:
                    for _ in range(8):
                        await f.write(b"x" * 256 * 1024)

            task = asyncio.create_task(write())
            await asyncio.sleep(rng.uniform(0, 0.01))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert all(not name.startswith(".") for name in leftovers(tmp_path))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_during_cli_download_exits_130_and_leaves_nothing(
    s3_server: Any, bucket: str, faults: FaultLayer, tmp_path: Path
) -> None:
    import boto3

    boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ).put_object(Bucket=bucket, Key="big800.bin", Body=os.urandom(24 * MiB))
    faults.add(Fault(op="GetObject", delay=0.3, times=-1))
    out = tmp_path / "dest"
    out.mkdir()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiokeg._entry",
            "--endpoint-url",
            s3_server.endpoint_url,
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            "--region",
            "us-east-1",
            "cp",
            "-q",
            f"s3://{bucket}/big800.bin",
            str(out) + "/",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not faults.ops("GetObject") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert leftovers(out) == []
