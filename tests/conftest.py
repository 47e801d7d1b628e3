"""Shared fixtures: a real S3 protocol (moto's server on port 0) and a blocking-call detector."""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from blockbuster import BlockBuster, blockbuster_ctx

sys.path.insert(0, os.path.dirname(__file__))

from aiokeg import AsyncS3Storage
from s3server import FaultLayer, S3TestServer

MiB = 1024 * 1024
# Recognisable test credentials (the secrets test looks for them in messages).
ACCESS_KEY = "AKIATESTACCESSKEY123"
SECRET_KEY = "TestSecretKey/DoNotLeak+abcdefghijklmnop"

_bucket_numbers = itertools.count(1)
# One botocore session for the run: it caches the service models it loads,
# which saves ~0.5 s per client.
_SESSION = AioSession()


#: Set to an S3 endpoint (e.g. Ceph RGW, see tests/rgw.py and `nox -s rgw`) to run
#: the suite against that server instead of moto. The server must accept
#: ACCESS_KEY / SECRET_KEY. Tests that need moto's in-process fault layer skip.
EXTERNAL_ENDPOINT = os.environ.get("AIOKEG_TEST_S3_ENDPOINT")
ON_MOTO = EXTERNAL_ENDPOINT is None


class ExternalServer:
    """A real S3 engine started outside the tests."""

    layer = None

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.port = int(endpoint_url.rsplit(":", 1)[1].strip("/"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """moto's S3 server on an ephemeral port (or the external engine), once per run."""
    if EXTERNAL_ENDPOINT:
        yield ExternalServer(EXTERNAL_ENDPOINT)
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3TestServer().start()
    yield server
    server.stop()


def moto_only(reason: str) -> Any:
    """Mark a test that relies on moto's in-process server."""
    return pytest.mark.skipif(not ON_MOTO, reason=f"moto only: {reason}")


@pytest.fixture
def faults(s3_server: Any) -> Iterator[FaultLayer]:
    """The server's fault layer, empty at the start of each test."""
    if s3_server.layer is None:
        pytest.skip("needs moto's in-process fault-injecting and request-counting layer")
    s3_server.layer.reset()
    yield s3_server.layer
    s3_server.layer.reset()


@pytest.fixture
async def raw_s3(s3_server: S3TestServer) -> AsyncIterator[Any]:
    """A plain aiobotocore client, for tests to look at the server's state."""
    async with _SESSION.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=AioConfig(retries={"total_max_attempts": 1}),
    ) as client:
        yield client


@pytest.fixture
async def bucket(raw_s3: Any, s3_server: Any) -> str:
    """A fresh, empty bucket for each test."""
    name = f"aiokeg-test-{os.getpid()}-{next(_bucket_numbers)}"
    await raw_s3.create_bucket(Bucket=name)
    if s3_server.layer is not None:
        s3_server.layer.reset()
    return name


@pytest.fixture
async def make_s3(
    s3_server: S3TestServer, bucket: str
) -> AsyncIterator[Callable[..., AsyncS3Storage]]:
    """Build ``AsyncS3Storage`` objects on the test bucket; all are closed afterwards."""
    made: list[AsyncS3Storage] = []

    def make(**kwargs: Any) -> AsyncS3Storage:
        kwargs.setdefault("endpoint_url", s3_server.endpoint_url)
        kwargs.setdefault("chunk_size", 5 * MiB)
        kwargs.setdefault("max_concurrency", 4)
        kwargs.setdefault("retry_base_delay", 0.01)
        kwargs.setdefault("retry_max_delay", 0.05)
        kwargs.setdefault("read_timeout", 10)
        kwargs.setdefault("session", _SESSION)
        storage = AsyncS3Storage(
            kwargs.pop("bucket", bucket),
            "us-east-1",
            ACCESS_KEY,
            SECRET_KEY,
            **kwargs,
        )
        made.append(storage)
        return storage

    yield make
    for storage in made:
        await storage.aclose()


@pytest.fixture
def s3(make_s3: Callable[..., AsyncS3Storage]) -> AsyncS3Storage:
    """An ``AsyncS3Storage`` on a fresh bucket, 5 MiB chunks, 4 requests per file."""
    return make_s3()


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test whose coroutines make a blocking file or socket call on the loop."""
    with blockbuster_ctx(scanned_modules=["aiokeg"]) as bb:
        yield bb


async def list_uploads(raw_s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Incomplete multipart uploads left in ``bucket``."""
    response = await raw_s3.list_multipart_uploads(Bucket=bucket)
    return list(response.get("Uploads", []))


async def get_bytes(raw_s3: Any, bucket: str, key: str) -> bytes:
    """The whole object, read with the plain client."""
    response = await raw_s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        data: bytes = await body.read()
    return data


async def seed_objects(raw_s3: Any, bucket: str, objects: dict[str, bytes]) -> None:
    """Create objects for a test's setup, fast.

    On moto they go straight into its in-process backend (thousands of PUTs
    over HTTP cost ~10 ms each there); on an external engine, concurrent PUTs.
    What a test checks (listing, deleting, reading) still goes over HTTP.
    """
    if ON_MOTO:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, data in objects.items():
            backend.put_object(bucket, key, data)
        return
    import asyncio

    limit = asyncio.Semaphore(32)

    async def put(key: str, data: bytes) -> None:
        async with limit:
            await raw_s3.put_object(Bucket=bucket, Key=key, Body=data)

    await asyncio.gather(*(put(k, d) for k, d in objects.items()))


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating test bytes (a repeated pattern would hide misordering)."""
    import random

    return random.Random(seed).randbytes(size)
