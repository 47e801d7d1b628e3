"""Credentials never appear in error messages, log records or reprs."""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from aiokeg import AsyncS3Storage, StorageError
from conftest import MiB, payload
from s3server import Fault, FaultLayer

ACCESS = "AKIALEAKCANARY000001"
SECRET = "leak/canary/secret/key/do-not-print-0001"
# Characters that change under percent-encoding and base64, as real STS tokens have.
TOKEN = "leak+canary/session=token/0001+FwoGZXIvYXdzEJr//////////=="


def _forms(secret: str) -> list[str]:
    """Every encoding in which a secret could reach a log line or a message."""
    return [
        secret,
        quote(secret, safe=""),
        quote(secret, safe="/"),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
    ]


CANARIES = sorted({form for secret in (SECRET, TOKEN) for form in _forms(secret)})


def leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


async def test_failures_at_every_layer_never_show_credentials(
    s3_server: Any, bucket: str, faults: FaultLayer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    storage = AsyncS3Storage(
        bucket,
        "us-east-1",
        ACCESS,
        SECRET,
        endpoint_url=s3_server.endpoint_url,
        aws_session_token=TOKEN,
        chunk_size=5 * MiB,
        max_attempts=2,
        retry_base_delay=0.01,
    )
    seen: list[str] = [repr(storage), str(storage)]
    async with storage:
        errors: list[BaseException] = []
        faults.add(Fault(op="UploadPart", status=500, times=-1))
        faults.add(Fault(op="GetObject", truncate_after=10, times=-1))
        faults.add(Fault(op="HeadObject", status=403, code="AccessDenied", times=1))
        faults.add(Fault(op="HeadObject", key="garbage", garbage=True, times=-1))
        faults.add(Fault(op="PutObject", key="garbage", garbage=True, times=-1))
        faults.add(Fault(op="DeleteObject", garbage=True, times=-1))
        for action in (
            lambda: storage.stat("k"),  # 403
            lambda: storage.stat("missing"),  # 404
            lambda: storage.stat("garbage"),  # not HTTP, on the data path
            lambda: _write(storage, "garbage", 10),  # not HTTP, on the data path
            lambda: storage.delete("k"),  # not HTTP, through botocore
            lambda: _write(storage, "big", 6 * MiB),  # part failures
            lambda: _read(storage, "small"),  # cut bodies
            lambda: storage.link_to("k", "download", -1),  # bad input
        ):
            try:
                await action()
            except (StorageError, ValueError) as exc:
                errors.append(exc)
        seen += [repr(storage)]
        for exc in errors:
            chain: BaseException | None = exc
            while chain is not None:
                seen += [str(chain), repr(chain), repr(vars(chain)), repr(chain.args)]
                chain = chain.__cause__ or chain.__context__
        url = await storage.link_to("k", "download", 60)
        assert SECRET not in url  # a presigned URL carries the key id, never the secret
    assert len(errors) == 8
    records = caplog.records
    assert len(records) > 50, "DEBUG logging did not reach the test's handler"
    seen += [r.getMessage() for r in records]
    seen += [caplog.text]
    found = [(leaks(text), text[:300]) for text in seen if leaks(text)]
    assert found == []


async def _write(storage: AsyncS3Storage, key: str, size: int) -> None:
    async with storage.open(key, "wb") as f:
        await f.write(payload(size))


async def _read(storage: AsyncS3Storage, key: str) -> None:
    async with storage.open(key, "wb") as f:
        await f.write(b"0123456789" * 100)
    async with storage.open(key, "rb") as f:
        await f.read()
