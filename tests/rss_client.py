"""Subprocess client for the memory tests: one transfer, then its peak RSS growth.

Usage: python rss_client.py write|read ENDPOINT BUCKET KEY SIZE_MIB CHUNK_MIB CONCURRENCY
Prints one JSON line: {"growth_mib": ..., "bytes": ..., "md5": ...}.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import sys

MiB = 1024 * 1024


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    # VmHWM, not getrusage's ru_maxrss: ru_maxrss survives exec, so a child of a
    # big parent (pytest holding moto's objects) would report the parent's peak.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def main() -> None:
    from aiokeg import AsyncS3Storage

    mode, endpoint, bucket, key = sys.argv[1:5]
    size, chunk, concurrency = (int(v) for v in sys.argv[5:8])
    block = bytes(range(256)) * (MiB // 256)
    digest = hashlib.md5()
    async with AsyncS3Storage(
        bucket,
        "us-east-1",
        os.environ["AIOKEG_TEST_ACCESS_KEY"],
        os.environ["AIOKEG_TEST_SECRET_KEY"],
        endpoint_url=endpoint,
        chunk_size=chunk * MiB,
        max_concurrency=concurrency,
    ) as storage:
        await storage.exists(key)  # client created, models loaded
        baseline = rss_now()
        done = 0
        if mode == "write":
            async with storage.open(key, "wb") as f:
                for i in range(size):
                    piece = i.to_bytes(8, "big") + block[8:]
                    digest.update(piece)
                    done += await f.write(piece)
        else:
            async with storage.open(key, "rb") as f:
                while chunk_data := await f.read(MiB):
                    digest.update(chunk_data)
                    done += len(chunk_data)
    growth = peak_rss() - baseline
    print(json.dumps({"growth_mib": growth / MiB, "bytes": done, "md5": digest.hexdigest()}))


asyncio.run(main())
