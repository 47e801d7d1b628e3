"""Subprocess for the bulk-transfer memory test: copy 1,000 files, report peak RSS growth.

Usage: python transfer_client.py WORKDIR  ->  prints "FILES GROWTH_MIB BUDGET_MIB".
"""

from __future__ import annotations

import asyncio
import os
import sys

MiB = 1024 * 1024
BUDGET = 64 * MiB


def rss(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


async def main(workdir: str) -> None:
    from aiokeg import AsyncLocalStorage
    from aiokeg.transfer import copy_many

    src_dir, dst_dir = os.path.join(workdir, "src"), os.path.join(workdir, "dst")
    os.makedirs(dst_dir)
    async with AsyncLocalStorage(src_dir) as src, AsyncLocalStorage(dst_dir) as dst:
        entries = await src.list()
        with open("/proc/self/clear_refs", "w") as f:  # noqa: ASYNC230 - /proc, no disk
            f.write("5")
        baseline = rss("VmRSS")
        report = await copy_many(
            src, dst, [(e.name, e.name, e.size) for e in entries], max_bytes_in_flight=BUDGET
        )
        growth = rss("VmHWM") - baseline
    assert not report.failures, report.failures[:3]
    print(len(report.copied), growth / MiB, BUDGET // MiB)


if __name__ == "__main__":
    root = sys.argv[1]
    src = os.path.join(root, "src")
    block = os.urandom(MiB)
    for i in range(1000):
        folder = os.path.join(src, f"d{i % 10}")
        os.makedirs(folder, exist_ok=True)
        size = (i * 7919) % (2 * MiB)
        with open(os.path.join(folder, f"f{i:04d}"), "wb") as f:
            f.write(block[: size % MiB] + block[: max(0, size - MiB)])
    asyncio.run(main(root))
