"""Network faults at the TCP level (tests/faultproxy.py), one focused test per kind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from aiokeg import AsyncS3Storage, TransferError
from conftest import MiB, get_bytes, list_uploads, moto_only, payload
from faultproxy import FaultProxy

pytestmark = moto_only(
    "fault plans are per connection; moto closes each one (RGW keeps them alive)"
)


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[FaultProxy]:
    p = FaultProxy(("127.0.0.1", s3_server.port), seed=1, stall=3.0).start()
    yield p
    p.stop()


@pytest.fixture
def s3p(make_s3: Any, proxy: FaultProxy) -> AsyncS3Storage:
    """A storage that talks to moto through the fault proxy."""
    storage: AsyncS3Storage = make_s3(endpoint_url=proxy.endpoint_url)
    return storage


def only(method: bytes, marker: bytes = b"") -> Any:
    return lambda head: head.startswith(method + b" ") and marker in head.split(b"\r\n")[0]


@pytest.mark.parametrize("plan", ["reset_request", "reset_response", "error500", "error503"])
async def test_part_upload_faults_are_retried(
    s3p: AsyncS3Storage, proxy: FaultProxy, raw_s3: Any, bucket: str, plan: str
) -> None:
    proxy.predicate = only(b"PUT", b"partNumber=2")
    proxy.force(plan)
    data = payload(11 * MiB)
    async with s3p.open("k", "wb") as f:
        await f.write(data)
    assert proxy.counts[plan] == 1
    assert await get_bytes(raw_s3, bucket, "k") == data
    assert await list_uploads(raw_s3, bucket) == []
    # A request reset before any answer is repeated once by aiohttp itself
    # (PUT is idempotent) before aiokeg's own retries come into play.
    assert s3p.retries >= (0 if plan == "reset_request" else 1)


@pytest.mark.parametrize("plan", ["reset_response", "truncate", "error503", "latency"])
async def test_read_faults_are_retried_or_resumed(
    s3p: AsyncS3Storage, proxy: FaultProxy, raw_s3: Any, bucket: str, plan: str
) -> None:
    data = payload(3 * MiB)
    await raw_s3.put_object(Bucket=bucket, Key="r", Body=data)
    proxy.predicate = only(b"GET", b"/r")
    proxy.force(plan)
    async with s3p.open("r", "rb") as f:
        assert await f.read() == data
    assert proxy.counts[plan] == 1


async def test_stalled_server_gives_transfer_error_within_the_timeout(
    make_s3: Any, proxy: FaultProxy, raw_s3: Any, bucket: str
) -> None:
    await raw_s3.put_object(Bucket=bucket, Key="slow", Body=b"x" * 1000)
    s3 = make_s3(endpoint_url=proxy.endpoint_url, read_timeout=0.5, max_attempts=2)
    proxy.predicate = only(b"GET", b"/slow")
    proxy.force("stall", "stall")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TransferError) as info:  # the GET at open stalls
        async with s3.open("slow", "rb") as f:
            await f.read()
    elapsed = loop.time() - started
    assert info.value.attempts == 2
    assert elapsed < 2.5, f"took {elapsed:.1f}s for two 0.5 s timeouts"


async def test_stalled_part_upload_aborts_cleanly(
    make_s3: Any, proxy: FaultProxy, raw_s3: Any, bucket: str
) -> None:
    s3 = make_s3(endpoint_url=proxy.endpoint_url, read_timeout=0.5, max_attempts=2)
    proxy.predicate = only(b"PUT", b"partNumber=1")
    proxy.force("stall", "stall")
    with pytest.raises(TransferError):
        async with s3.open("stuck", "wb") as f:
            await f.write(payload(6 * MiB))
    await asyncio.sleep(0.1)
    assert await list_uploads(raw_s3, bucket) == []
    assert (await raw_s3.list_objects_v2(Bucket=bucket)).get("KeyCount", 0) == 0


async def test_connect_timeout_is_configurable(make_s3: Any) -> None:
    import socket

    # A listening socket that never accepts: connections hang in the backlog
    # once it is full, so use an unroutable-free trick: a closed port refuses.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    s3 = make_s3(endpoint_url=f"http://127.0.0.1:{port}", connect_timeout=0.5, max_attempts=2)
    with pytest.raises(TransferError, match="2 attempt"):
        await s3.stat("anything")
