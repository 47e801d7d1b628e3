"""The data path: PutObject, UploadPart, GetObject and HeadObject sent without botocore.

These four requests carry the data, so aiokeg signs and sends them itself
(``aiokeg/s3/_http.py``); the tests below check that they really do take
that path, that what they send is what botocore would have sent, and that
what the data path cannot express still goes through botocore.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from aiobotocore.session import AioSession
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from yarl import URL

from aiokeg import AsyncS3Storage
from aiokeg.s3._http import _Signer
from conftest import ACCESS_KEY, SECRET_KEY, MiB, get_bytes, moto_only, payload

DATA_OPS = ("PutObject", "UploadPart", "GetObject", "HeadObject")


def _by_botocore(record: dict[str, Any]) -> bool:
    return "Botocore" in record["headers"].get("HTTP_USER_AGENT", "")


@pytest.mark.parametrize(
    ("method", "path", "query", "token"),
    [
        ("PUT", "/bucket/dir/a%20key%2Bplus/%C3%A9t%C3%A9.bin", (), None),
        ("PUT", "/bucket/k", (("partNumber", "7"), ("uploadId", "a/b+c=")), "Session/Token+1"),
        ("GET", "/bucket/..%2F/x//y", (), None),
        ("HEAD", "/bucket/plain", (), "tok"),
    ],
)
async def test_signature_is_botocores(
    method: str, path: str, query: tuple[tuple[str, str], ...], token: str | None
) -> None:
    """The same request signed by aiokeg and by botocore carries the same Authorization."""
    raw = "https://s3.eu-west-3.example.com:8443" + path
    if query:
        raw += "?" + "&".join(
            f"{k}={v.replace('/', '%2F').replace('+', '%2B').replace('=', '%3D')}" for k, v in query
        )
    headers = {
        "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        "Range": "bytes=0-99",
        "x-amz-meta-note": "two  spaces ",
        "Content-Type": "text/plain",
    }
    request = AWSRequest(method=method, url=raw, headers=dict(headers))
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), "s3", "eu-west-3").add_auth(request)
    stamp = request.headers["X-Amz-Date"]
    now = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)

    async def credentials() -> tuple[str, str, str | None]:
        return ACCESS_KEY, SECRET_KEY, token

    url = URL(raw, encoded=True)
    ours = dict(headers, Host=url.raw_authority)
    await _Signer("eu-west-3", credentials).sign(method, url, query, ours, now=now)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert ours.get("x-amz-security-token") == token


@moto_only("reads the request log of moto's fault layer")
async def test_data_requests_skip_botocore(
    s3: AsyncS3Storage, faults: Any, raw_s3: Any, bucket: str
) -> None:
    """Parts, small PUTs, ranged GETs and HEADs go out on the data path; the rest on botocore."""
    big, small = payload(12 * MiB), payload(1000, seed=1)
    async with s3.open("big", "wb") as f:
        await f.write(big)
    async with s3.open("small", "wb") as f:
        await f.write(small)
    for key, data in (("big", big), ("small", small)):
        async with s3.open(key, "rb") as f:
            assert await f.read() == data
    await s3.stat("small")
    seen = {
        op: faults.ops(op) for op in (*DATA_OPS, "CreateMultipartUpload", "CompleteMultipartUpload")
    }
    for op in DATA_OPS:
        assert seen[op], f"no {op} was sent"
        assert not any(_by_botocore(r) for r in seen[op]), f"{op} went through botocore"
    assert all(
        _by_botocore(r) for r in seen["CreateMultipartUpload"] + seen["CompleteMultipartUpload"]
    )
    assert all(r["content_md5"] for r in seen["PutObject"] + seen["UploadPart"])
    assert await get_bytes(raw_s3, bucket, "big") == big


@moto_only("reads the request log of moto's fault layer")
async def test_put_headers_on_the_data_path(
    s3: AsyncS3Storage, faults: Any, raw_s3: Any, bucket: str
) -> None:
    """ContentType, Metadata and other header parameters are sent as botocore would send them."""
    extra = {
        "ContentType": "text/csv",
        "CacheControl": "max-age=60",
        "ContentDisposition": 'attachment; filename="r.csv"',
        "Metadata": {"owner": "team-a", "Run": "7"},
    }
    async with s3.open("r.csv", "wb", extra_args=extra) as f:
        await f.write(b"a,b\n")
    assert not any(_by_botocore(r) for r in faults.ops("PutObject"))
    head = await raw_s3.head_object(Bucket=bucket, Key="r.csv")
    assert head["ContentType"] == "text/csv"
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentDisposition"] == 'attachment; filename="r.csv"'
    assert head["Metadata"] == {"owner": "team-a", "run": "7"}
    info = await s3.stat("r.csv")
    assert info.content_type == "text/csv"
    assert info.metadata == {"owner": "team-a", "run": "7"}


@moto_only("reads the request log of moto's fault layer")
async def test_parameters_only_botocore_sends_fall_back(
    s3: AsyncS3Storage, faults: Any, raw_s3: Any, bucket: str
) -> None:
    """A PutObject parameter the data path cannot express (a timestamp) goes through botocore."""
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    async with s3.open("e", "wb", extra_args={"Expires": expires}) as f:
        await f.write(b"x")
    (put,) = faults.ops("PutObject")
    assert _by_botocore(put)
    assert await get_bytes(raw_s3, bucket, "e") == b"x"


@moto_only("reads the request log of moto's fault layer")
async def test_session_token_is_sent(make_s3: Any, faults: Any) -> None:
    token = "FakeSessionToken/ForTheDataPath+0123456789"
    s3 = make_s3(aws_session_token=token)
    async with s3.open("k", "wb") as f:
        await f.write(b"v")
    (put,) = faults.ops("PutObject")
    assert not _by_botocore(put)
    assert put["headers"]["HTTP_X_AMZ_SECURITY_TOKEN"] == token
    assert token not in repr(s3)


@moto_only("reads the request log of moto's fault layer")
async def test_credentials_from_botocores_chain(
    s3_server: Any, bucket: str, faults: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without keys, the data path signs with what botocore's credential chain finds."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACHAINKEY00000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ChainSecret/abcdefghijklmnop")
    async with AsyncS3Storage(
        bucket, "us-east-1", endpoint_url=s3_server.endpoint_url, session=AioSession()
    ) as s3:
        async with s3.open("k", "wb") as f:
            await f.write(b"v")
        async with s3.open("k", "rb") as f:
            assert await f.read() == b"v"
    (put,) = faults.ops("PutObject")
    assert not _by_botocore(put)
    assert "Credential=AKIACHAINKEY00000000/" in put["headers"]["HTTP_AUTHORIZATION"]


async def test_data_path_in_use_on_this_server(s3: AsyncS3Storage) -> None:
    """On every server the suite runs on (moto, Ceph RGW), the data path is set up, not skipped.

    A failure to set it up is not an error (botocore then sends everything),
    so only this test would notice it.
    """
    async with s3.open("k", "wb") as f:
        await f.write(b"v")
    async with s3.open("k", "rb") as f:
        assert await f.read() == b"v"
    assert s3._s3._data is not None
