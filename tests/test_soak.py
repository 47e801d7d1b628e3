"""Soak: 200 concurrent transfers through a proxy that faults >10% of connections.

Each transfer either round-trips byte-identical or raises TransferError;
afterwards no object from a failed write exists, no multipart upload is left,
no task is pending and no connection is left open (ResourceWarning is an error).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from aiokeg import TransferError
from conftest import MiB, list_uploads, moto_only, payload
from faultproxy import PLANS, FaultProxy

pytestmark = [pytest.mark.slow, moto_only("fault plans are per connection; moto closes each one")]

TRANSFERS = 200


async def test_soak_under_mixed_faults(
    make_s3: Any, s3_server: Any, raw_s3: Any, bucket: str
) -> None:
    proxy = FaultProxy(
        ("127.0.0.1", s3_server.port), fault_rate=0.15, seed=2026, kinds=PLANS[1:], stall=1.5
    ).start()
    try:
        s3 = make_s3(
            endpoint_url=proxy.endpoint_url, max_attempts=4, read_timeout=1.0, max_concurrency=2
        )
        rng = random.Random(11)
        sizes = [rng.randint(1, 512 * 1024) for _ in range(TRANSFERS - 10)] + [6 * MiB] * 10
        rng.shuffle(sizes)
        outcome: dict[str, int] = {"ok": 0, "failed_up": 0, "failed_down": 0}
        failed_keys: list[str] = []

        async def one(i: int, size: int) -> None:
            key = f"soak/{i:03d}"
            data = payload(size, seed=i)
            try:
                async with s3.open(key, "wb") as f:
                    await f.write(data)
            except TransferError:
                outcome["failed_up"] += 1
                failed_keys.append(key)
                return
            try:
                async with s3.open(key, "rb") as f:
                    assert await f.read() == data, f"{key} came back different"
            except TransferError:
                outcome["failed_down"] += 1
                return
            outcome["ok"] += 1

        await asyncio.gather(*(one(i, size) for i, size in enumerate(sizes)))
        await s3.aclose()
    finally:
        proxy.stop()
    stored = {e["Key"] for e in (await raw_s3.list_objects_v2(Bucket=bucket)).get("Contents", [])}
    assert not stored & set(failed_keys), "a failed write left an object"
    assert await list_uploads(raw_s3, bucket) == []
    assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()
    print(
        f"\nsoak: {TRANSFERS} transfers, {sum(proxy.counts.values())} connections, "
        f"{proxy.faults} faults injected {dict(proxy.counts)}, {s3.retries} retries, "
        f"{outcome['ok']} ok, {outcome['failed_up']} uploads and "
        f"{outcome['failed_down']} downloads failed cleanly"
    )
    assert proxy.faults / sum(proxy.counts.values()) >= 0.10
    assert outcome["ok"] + outcome["failed_up"] + outcome["failed_down"] == TRANSFERS
