"""The one boundary where botocore / aiohttp errors become aiokeg errors.

Errors are mapped by S3 error *code* and HTTP status, never by message text.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import botocore.exceptions

from .._errors import (
    AccessDeniedError,
    ObjectChangedError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageError,
    TransferError,
)
from ._redact import scrub_exception

__all__ = ["error_code", "is_retryable", "translate"]

_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}
_PRECONDITION = {"PreconditionFailed", "412"}
_RETRYABLE_CODES = {
    "InternalError",
    "SlowDown",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "BadDigest",  # the body was damaged in flight; sending it again fixes it
}
# Network-level failures: the request may not have reached the server, or
# its answer was cut. All S3 calls aiokeg makes are safe to repeat.
_TRANSIENT = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class IntegrityError(Exception):
    """What the server reports does not match what was sent (checked by aiokeg).

    ``etag`` is the ETag of the version the server now holds, if it stored one.
    """

    def __init__(self, message: str, *, etag: str | None = None) -> None:
        super().__init__(message)
        self.etag = etag


def error_code(exc: BaseException) -> tuple[str, int]:
    """Return ``(code, http_status)`` of a botocore ``ClientError`` (else ``("", 0)``)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        response: dict[str, Any] = exc.response
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code, status
    return "", 0


def is_retryable(exc: BaseException) -> bool:
    """True for failures worth another attempt: 5xx, throttling, dropped connections."""
    if isinstance(exc, IntegrityError):
        return True
    code, status = error_code(exc)
    if code or status:
        return status >= 500 or code in _RETRYABLE_CODES
    return isinstance(exc, _TRANSIENT)


def translate(
    exc: BaseException,
    *,
    bucket: str,
    key: str | None,
    operation: str,
    attempts: int = 1,
    exclusive: bool = False,
) -> StorageError:
    """Map a backend exception to the aiokeg error a caller can act on.

    ``exclusive`` says a 412 means "the key exists" (an ``xb`` write) rather
    than "the object changed" (a pinned read).
    """
    scrub_exception(exc)  # it becomes the __cause__: no request headers in its repr
    where = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket!r}"
    kw: dict[str, Any] = {"bucket": bucket, "key": key, "operation": operation}
    code, status = error_code(exc)
    if code in _NOT_FOUND or (status == 404 and code not in {"NoSuchBucket", "NoSuchUpload"}):
        return ObjectNotFoundError(f"{where} does not exist ({operation})", **kw)
    if code == "NoSuchBucket":
        return StorageError(
            f"{operation} on {where} failed: bucket {bucket!r} does not exist; "
            "create it or check the bucket name and endpoint_url",
            **kw,
        )
    if code in _DENIED or status == 403:
        return AccessDeniedError(
            f"{operation} on {where} was refused ({code or status}): check the credentials, "
            "the region and the bucket policy",
            **kw,
        )
    if code in _PRECONDITION or status == 412:
        if exclusive:
            return ObjectExistsError(
                f"{where} already exists; mode 'xb' creates only new keys "
                "(the existing object was left untouched)",
                **kw,
            )
        return ObjectChangedError(
            f"{where} changed while it was being read ({operation}); open it again "
            "to read the new version",
            **kw,
        )
    detail = _describe(exc)
    if is_retryable(exc):
        return TransferError(
            f"{operation} on {where} failed after {attempts} attempt(s): {detail}",
            attempts=attempts,
            **kw,
        )
    return StorageError(f"{operation} on {where} failed: {detail}", **kw)


def _describe(exc: BaseException) -> str:
    code, status = error_code(exc)
    if code or status:
        message = ""
        if isinstance(exc, botocore.exceptions.ClientError):
            message = str(exc.response.get("Error", {}).get("Message", "") or "")
        return f"{code or 'HTTP ' + str(status)}" + (f" ({message})" if message else "")
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
