"""Keep credentials out of log records and exceptions, botocore's DEBUG logs included.

botocore logs canonical requests (with ``x-amz-security-token``,
percent-encoded in presigned URLs) and request headers at DEBUG level.
aiokeg registers every secret key and session token it is given, in every
encoding it could be printed in, and a filter on the loggers that print
requests replaces them with ``***`` before any handler sees the record.

Exceptions from the HTTP layer carry the request's headers (aiohttp's
``RequestInfo``: ``Authorization``, ``x-amz-security-token``); every
exception aiokeg translates or logs is scrubbed of them first, along its
whole cause/context chain.
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["redact", "register_secret", "scrub_exception"]

#: Loggers whose records can carry request headers or signing material.
_LOGGERS = (
    "botocore.auth",
    "botocore.endpoint",
    "botocore.hooks",
    "botocore.parsers",
    "aiobotocore.endpoint",
    "aiobotocore.httpsession",
    "aiokeg.s3",
)
_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            scrub_exception(record.exc_info[1])
        return True


def _variants(value: str) -> set[str]:
    """``value`` as it may appear in a URL, a query string, a header or base64."""
    return {
        value,
        quote(value, safe=""),
        quote(value, safe="/"),
        quote(value, safe="-_.~"),
        quote_plus(value),
        base64.b64encode(value.encode()).decode(),
    }


def redact(text: str) -> str:
    """``text`` with every registered secret (in any encoding) replaced by ``***``."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def register_secret(value: str | None) -> None:
    """Redact ``value`` from the request-logging loggers from now on."""
    global _installed
    if not value or len(value) < 8:
        return
    with _lock:
        _secrets.update(_variants(value))
        if not _installed:
            redactor = _RedactSecrets()
            for name in _LOGGERS:
                logging.getLogger(name).addFilter(redactor)
            _installed = True


#: Request headers that carry credentials (compared lower-case).
_SECRET_HEADERS = {"authorization", "x-amz-security-token", "proxy-authorization"}


def _clean_value(value: Any, depth: int) -> Any:
    """``value`` without credentials: request infos rebuilt, strings redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, BaseException):
        _scrub_one(value, depth + 1)
        return value
    headers = getattr(value, "headers", None)
    if isinstance(value, tuple) and hasattr(value, "real_url") and headers is not None:
        return _clean_request_info(value)
    if isinstance(value, dict):
        return {k: _clean_value(v, depth) for k, v in value.items()}
    return value


def _clean_request_info(info: Any) -> Any:
    from aiohttp import RequestInfo
    from multidict import CIMultiDict, CIMultiDictProxy

    headers = CIMultiDict(
        (name, "***" if name.lower() in _SECRET_HEADERS else redact(str(value)))
        for name, value in info.headers.items()
    )
    return RequestInfo(info.url, info.method, CIMultiDictProxy(headers), info.real_url)


def _scrub_one(exc: BaseException, depth: int) -> None:
    if depth > 8:
        return
    try:
        exc.args = tuple(_clean_value(arg, depth) for arg in exc.args)
        for name in ("request_info", "kwargs"):
            value = getattr(exc, name, None)
            if value is not None:
                setattr(exc, name, _clean_value(value, depth))
    except (AttributeError, TypeError):  # a read-only attribute: nothing to clean there
        pass


def scrub_exception(exc: BaseException) -> None:
    """Remove credentials from ``exc`` and its causes, in place (before anyone prints them)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        _scrub_one(current, 0)
        current = current.__cause__ or current.__context__
