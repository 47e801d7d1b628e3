"""The data path: the four hot S3 requests sent straight over aiohttp, signed with SigV4.

botocore spends about 2 ms of CPU on each request (parameter validation,
endpoint rules, event hooks, signing, response parsing), more than the
transfer of a 64 KiB object costs. aiokeg sends the requests that move data
(``PutObject``, ``UploadPart``, ranged ``GetObject`` and ``HeadObject``)
itself: about a third of the CPU, measured in docs/tuning.md. Everything
else (multipart bookkeeping, listing, deleting, copying, presigning) stays
on the aiobotocore client.

What this module does not decide, botocore does: the URL of the bucket and
the signing region come from a URL botocore presigns once (so endpoint
rules, addressing style and regions are botocore's), and credentials from
botocore's chain when none were passed. Responses come back in botocore's
shapes and failures as botocore ``ClientError``, so retries and error
translation are shared with the rest of the backend.

Bodies are signed ``UNSIGNED-PAYLOAD``: integrity comes from ``Content-MD5``,
which the server checks (``verify_md5``, on by default), and from TLS.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from xml.etree import ElementTree

import aiohttp
import aiohttp.payload
import botocore.exceptions
from aiohttp.abc import AbstractStreamWriter
from yarl import URL

from ._listing import parse_list_objects_v2

__all__ = ["CredentialSource", "Credentials", "DataPath", "data_path_for"]

#: (access key, secret key, session token or None)
Credentials = tuple[str, str, str | None]
CredentialSource = Callable[[], Awaitable[Credentials]]

_PROBE_KEY = "aiokeg-probe"
_UNSIGNED = "UNSIGNED-PAYLOAD"
_ERROR_BODY_LIMIT = 64 * 1024
_SPACES = re.compile(r" +")
#: botocore parameters of PutObject that need more than a header copy
#: (SSE-C keys are base64-encoded and hashed by botocore's handlers).
_NOT_PLAIN = {"SSECustomerKey", "SSECustomerKeyMD5", "SSECustomerAlgorithm"}


def _quote(value: str) -> str:
    return quote(value, safe="-_.~")


class _Signer:
    """AWS Signature Version 4 for S3 requests, payload unsigned."""

    def __init__(self, region: str, credentials: CredentialSource) -> None:
        self.region = region
        self._credentials = credentials
        self._keys: dict[tuple[str, str], bytes] = {}

    def _signing_key(self, secret: str, day: str) -> bytes:
        key = self._keys.get((secret, day))
        if key is None:
            key = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}  # one day, one secret at a time
        return key

    async def sign(
        self,
        method: str,
        url: URL,
        query: Iterable[tuple[str, str]],
        headers: dict[str, str],
        now: datetime.datetime | None = None,
    ) -> None:
        """Add ``Authorization`` and the ``x-amz-*`` headers it covers to ``headers``.

        Every header in ``headers`` is signed; ``Host`` must be among them.
        """
        access, secret, token = await self._credentials()
        now = now or datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = _UNSIGNED
        if token:
            headers["x-amz-security-token"] = token
        canonical = {}
        for name, value in headers.items():
            canonical[name.lower()] = _SPACES.sub(" ", value.strip())
        names = sorted(canonical)
        signed = ";".join(names)
        request = "\n".join(
            (
                method,
                url.raw_path,
                "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query)),
                "".join(f"{n}:{canonical[n]}\n" for n in names),
                signed,
                _UNSIGNED,
            )
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest())
        )
        signature = hmac.new(
            self._signing_key(secret, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature}"
        )


class _BytesBody(aiohttp.payload.Payload):
    """A request body sent from the caller's bytes in 1 MiB slices, never copied first.

    (aiohttp's ``BytesIOPayload`` copies a shared ``BytesIO`` whole, then again
    in 64 KiB reads; ``BytesPayload`` warns above 1 MiB.)
    """

    _autoclose = True
    _STEP = 1024 * 1024

    def __init__(self, data: bytes | memoryview) -> None:
        super().__init__(data)
        self._size = len(data)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        view = memoryview(self._value)
        if content_length is not None:
            view = view[:content_length]
        for start in range(0, len(view), self._STEP):
            await writer.write(view[start : start + self._STEP])


class _Body:
    """A response body with the two calls aiokeg makes of botocore's ``StreamingBody``."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def read(self, n: int = -1) -> bytes:
        return await self._response.content.read(n)

    async def readany(self) -> bytes:
        """What has arrived (at least one byte, or b"" at the end), as it arrived."""
        return await self._response.content.readany()

    def close(self) -> None:
        # A fully read body gives its connection back to the pool; a body cut
        # short (a cancelled read) closes it, since its rest would follow.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class DataPath:
    """Sends ``PutObject``, ``UploadPart``, ``GetObject``, ``HeadObject`` and ``ListObjectsV2``.

    Method names and arguments are those of the aiobotocore client, and so
    are the responses (the fields aiokeg reads), so callers use either.
    """

    def __init__(
        self,
        bucket: str,
        base: str,
        signer: _Signer,
        header_names: Mapping[str, str],
        *,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.bucket = bucket
        self._base = base.rstrip("/")
        # The bucket itself: path style "/bucket", virtual hosts "/".
        self._bucket_url = self._base if urlsplit(self._base).path else self._base + "/"
        self._signer = signer
        self._header_names = header_names
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=connect_timeout, sock_read=read_timeout
            ),
            auto_decompress=False,
            # S3 stores the Content-Type it is sent: send only the one asked for.
            skip_auto_headers=("Content-Type",),
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._session.close()

    def put_headers(self, params: Mapping[str, Any]) -> dict[str, str] | None:
        """Headers for PutObject's botocore ``params``; None if only botocore can send them."""
        headers: dict[str, str] = {}
        for name, value in params.items():
            if name == "Metadata":
                if not isinstance(value, Mapping):
                    return None
                for meta, text in value.items():
                    if not (isinstance(meta, str) and isinstance(text, str) and text.isascii()):
                        return None
                    headers[f"x-amz-meta-{meta}"] = text
                continue
            header = self._header_names.get(name)
            if header is None or not isinstance(value, str) or not value.isascii():
                return None
            headers[header] = value
        return headers

    # -- the four requests ---------------------------------------------------------
    async def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        """``HeadObject``."""
        response = await self._send("HEAD", "HeadObject", Bucket, Key, (), {})
        response.release()
        return _object_fields(response)

    async def get_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Range: str,
        IfMatch: str | None = None,
    ) -> dict[str, Any]:
        """Ranged ``GetObject``, pinned with ``If-Match`` if given; read and close ``Body``."""
        headers = {"Range": Range}
        if IfMatch is not None:
            headers["If-Match"] = IfMatch
        response = await self._send("GET", "GetObject", Bucket, Key, (), headers)
        fields = _object_fields(response)
        fields["ContentRange"] = response.headers.get("Content-Range")
        fields["ResponseMetadata"] = {"HTTPStatusCode": response.status}
        fields["Body"] = _Body(response)
        return fields

    async def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: io.BytesIO | bytes | memoryview,
        ContentLength: int,
        ContentMD5: str | None = None,
        IfNoneMatch: str | None = None,
        IfMatch: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """``PutObject``; ``params`` are those :meth:`put_headers` accepts."""
        headers = self.put_headers(params)
        if headers is None:
            raise ValueError(f"PutObject parameters the data path cannot send: {sorted(params)}")
        headers["Content-Length"] = str(ContentLength)
        for name, value in (
            ("Content-MD5", ContentMD5),
            ("If-None-Match", IfNoneMatch),
            ("If-Match", IfMatch),
        ):
            if value is not None:
                headers[name] = value
        response = await self._send("PUT", "PutObject", Bucket, Key, (), headers, Body)
        response.release()
        return _upload_fields(response)

    async def upload_part(
        self,
        *,
        Bucket: str,
        Key: str,
        UploadId: str,
        PartNumber: int,
        Body: io.BytesIO | bytes | memoryview,
        ContentLength: int,
        ContentMD5: str | None = None,
    ) -> dict[str, Any]:
        """``UploadPart``."""
        headers = {"Content-Length": str(ContentLength)}
        if ContentMD5 is not None:
            headers["Content-MD5"] = ContentMD5
        query = (("partNumber", str(PartNumber)), ("uploadId", UploadId))
        response = await self._send("PUT", "UploadPart", Bucket, Key, query, headers, Body)
        response.release()
        return _upload_fields(response)

    async def list_objects_v2(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        ContinuationToken: str | None = None,
    ) -> dict[str, Any]:
        """``ListObjectsV2`` (one page), keys URL-encoded on the wire as botocore asks."""
        query = [("encoding-type", "url"), ("list-type", "2"), ("prefix", Prefix)]
        if ContinuationToken is not None:
            query.append(("continuation-token", ContinuationToken))
        response = await self._send("GET", "ListObjectsV2", Bucket, "", tuple(query), {})
        try:
            body = await response.read()
        finally:
            response.release()
        return parse_list_objects_v2(body)

    # -- transport ---------------------------------------------------------------
    async def _send(
        self,
        method: str,
        operation: str,
        bucket: str,
        key: str,
        query: tuple[tuple[str, str], ...],
        headers: dict[str, str],
        body: io.BytesIO | bytes | memoryview | None = None,
    ) -> aiohttp.ClientResponse:
        if bucket != self.bucket:
            raise ValueError(f"this data path serves bucket {self.bucket!r}, not {bucket!r}")
        raw = f"{self._base}/{quote(key, safe='/~')}" if key else self._bucket_url
        if query:
            raw += "?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query)
        url = URL(raw, encoded=True)
        # Sent as signed, port included or not as botocore wrote the URL.
        headers["Host"] = url.raw_authority
        await self._signer.sign(method, url, query, headers)
        payload = None
        if body is not None:
            # getvalue() of a BytesIO made from bytes is those bytes: no copy.
            payload = _BytesBody(body.getvalue() if isinstance(body, io.BytesIO) else body)
        response = await self._session.request(
            method, url, headers=headers, data=payload, allow_redirects=False
        )
        if response.status >= 300:
            await _raise_for(response, operation)
        return response


async def _raise_for(response: aiohttp.ClientResponse, operation: str) -> None:
    """Raise the ``ClientError`` botocore would for an S3 error response."""
    code, message = str(response.status), response.reason or ""
    try:
        if response.method != "HEAD":
            text = await response.content.read(_ERROR_BODY_LIMIT)
            if text:
                root = ElementTree.fromstring(text)
                code = root.findtext("Code") or code
                message = root.findtext("Message") or message
    except (ElementTree.ParseError, aiohttp.ClientError, TimeoutError):
        pass  # the status alone still classifies the error
    finally:
        response.close()
    raise botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": response.status},
        },
        operation,
    )


#: Response headers that say how an object is encrypted (its ETag may then be opaque).
_SSE_FIELDS = (
    ("ServerSideEncryption", "x-amz-server-side-encryption"),
    ("SSECustomerAlgorithm", "x-amz-server-side-encryption-customer-algorithm"),
)


def _upload_fields(response: aiohttp.ClientResponse) -> dict[str, Any]:
    fields: dict[str, Any] = {"ETag": response.headers.get("ETag", "")}
    for field, header in _SSE_FIELDS:
        if header in response.headers:
            fields[field] = response.headers[header]
    return fields


def _object_fields(response: aiohttp.ClientResponse) -> dict[str, Any]:
    headers = response.headers
    fields: dict[str, Any] = {
        "ContentLength": int(headers.get("Content-Length", "0")),
        "ETag": headers.get("ETag", ""),
        "Metadata": {
            name[11:].lower(): value
            for name, value in headers.items()
            if name.lower().startswith("x-amz-meta-")
        },
    }
    for field, header in (
        ("ContentType", "Content-Type"),
        ("ContentEncoding", "Content-Encoding"),
        ("ContentDisposition", "Content-Disposition"),
        ("CacheControl", "Cache-Control"),
        ("ContentLanguage", "Content-Language"),
        *_SSE_FIELDS,
    ):
        if header in headers:
            fields[field] = headers[header]
    if "Last-Modified" in headers:
        fields["LastModified"] = parsedate_to_datetime(headers["Last-Modified"])
    return fields


async def data_path_for(
    client: Any,
    bucket: str,
    credentials: CredentialSource,
    *,
    max_connections: int,
    connect_timeout: float,
    read_timeout: float,
) -> DataPath | None:
    """A data path for ``bucket`` that sends what ``client`` would, or None.

    The bucket's URL and the signing region are read from a URL the client
    presigns (no request is sent). None when that URL is not SigV4-signed
    (anonymous access, another signature version): then the client sends
    everything.
    """
    url: str = await client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": _PROBE_KEY}, ExpiresIn=60
    )
    parts = urlsplit(url)
    credential = parse_qs(parts.query).get("X-Amz-Credential", [""])[0].split("/")
    if len(credential) != 5 or not parts.path.endswith("/" + _PROBE_KEY):
        return None
    base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(_PROBE_KEY) - 1]}"
    shape = client.meta.service_model.operation_model("PutObject").input_shape
    header_names = {
        name: member.serialization["name"]
        for name, member in shape.members.items()
        if member.serialization.get("location") == "header"
        and member.type_name == "string"
        and name not in _NOT_PLAIN
    }
    return DataPath(
        bucket,
        base,
        _Signer(credential[2], credentials),
        header_names,
        max_connections=max_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
