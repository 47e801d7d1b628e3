"""Upload integrity: what an ETag proves, and what a mismatch may lead to.

Every body aiokeg uploads carries ``Content-MD5`` (with ``verify_md5``, the
default). A server that validates it (AWS, Ceph RGW, MinIO) refuses a
damaged body with ``BadDigest`` *before* storing anything, and the request
is simply sent again: that is the check that protects data.

The ETag comparison is only a second check, for servers that validate
nothing (moto, some appliances). An ETag is an MD5 only sometimes: SSE-KMS
and SSE-C objects (and several encrypting S3-compatible servers) answer an
opaque token. So an ETag is compared with the MD5 of the bytes sent only
when the answer names neither SSE-KMS nor SSE-C and the ETag looks like an
MD5; and the first time one differs, one probe settles what the server is:
the same body is sent once more with a deliberately wrong ``Content-MD5``.

- The server refuses it (``BadDigest``): it validates ``Content-MD5``, so
  the first body was stored intact and its ETag is simply not an MD5. The
  storage remembers this and compares no ETag again.
- The server takes it: it validates nothing, so the mismatch is real damage
  (the probe's own answer is then judged like any other). The storage
  remembers that too, and a mismatch is retried from then on.

A probe of an ``UploadPart`` replaces a part of aiokeg's own unfinished
upload; a probe of a ``PutObject`` is pinned with ``If-Match`` to the version
aiokeg itself just stored, so it can never overwrite anyone else's object.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import botocore.exceptions

from ._client import S3Context, content_md5
from ._errors import IntegrityError, error_code
from ._retry import logger

__all__ = ["check_upload", "etag_is_md5"]

#: Server-side encryption whose ETags are not MD5s (AWS: SSE-KMS, DSSE-KMS).
_OPAQUE_SSE = {"aws:kms", "aws:kms:dsse"}
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
_DIGEST_REFUSED = {"BadDigest", "InvalidDigest"}

#: ``probe(content_md5)`` sends the same body once more with that header and
#: returns the response (botocore's shape), or raises botocore's error.
Probe = Callable[[str], Awaitable[Mapping[str, Any]]]


def etag_is_md5(response: Mapping[str, Any], sent: Mapping[str, Any] | None = None) -> bool:
    """True if the ETag of an upload's answer may be the MD5 of the body.

    ``sent`` are the request's parameters: asking for SSE-KMS or SSE-C makes
    the ETag opaque whatever the answer says.
    """
    for fields in (response, sent or {}):
        if fields.get("SSECustomerAlgorithm"):
            return False
        if str(fields.get("ServerSideEncryption", "")).lower() in _OPAQUE_SSE:
            return False
    return bool(_MD5_HEX.fullmatch(str(response.get("ETag", "")).strip('"')))


async def check_upload(
    s3: S3Context,
    response: Mapping[str, Any],
    digest: bytes | None,
    what: str,
    probe: Probe,
    sent: Mapping[str, Any] | None = None,
) -> Mapping[str, Any]:
    """The answer describing what the server now holds, if it holds the bytes sent.

    ``digest`` is the MD5 of the bytes sent (None: no check); ``sent`` the
    request's parameters (see :func:`etag_is_md5`). That answer is
    ``response``, or the probe's when a probe stored the body again. Raises
    :class:`IntegrityError` if the server provably stored other bytes; its
    ``etag`` is the ETag of the version the server then holds.
    """
    if digest is None or s3.server_checks_md5 or not etag_is_md5(response, sent):
        return response
    etag = str(response.get("ETag", "")).strip('"')
    if etag.lower() == digest.hex():
        return response
    latest = str(response.get("ETag", ""))
    async with s3.probe_lock:
        # Another upload may have probed while this one waited for the lock.
        known = _server_checks_md5(s3)
        if known is None:
            wrong = bytes(b ^ 0xFF for b in digest)
            try:
                answer = await probe(content_md5(wrong))
            except botocore.exceptions.ClientError as exc:
                if error_code(exc)[0] not in _DIGEST_REFUSED:
                    raise
                s3.server_checks_md5 = True
                logger.debug(
                    "%s: the server validates Content-MD5; its ETags are not MD5s "
                    "and are no longer compared",
                    what,
                )
                return response
            s3.server_checks_md5 = False
            latest = str(answer.get("ETag", ""))
            if latest.strip('"').lower() == digest.hex():
                return answer
        elif known:
            return response
    raise IntegrityError(
        f"{what}: the server stored a body whose MD5 ({etag or 'none'}) is not that of "
        f"the bytes sent ({digest.hex()}); the body was damaged in flight",
        etag=latest,
    )


def _server_checks_md5(s3: S3Context) -> bool | None:
    return s3.server_checks_md5
