"""Keep credentials out of log records, botocore's DEBUG logs included.

botocore logs canonical requests (with ``x-amz-security-token``) and request
headers at DEBUG level. aiokeg registers every secret key and session token
it is given, and a filter on the loggers that print requests replaces them
with ``***`` before any handler sees the record.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["register_secret"]

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
        cleaned = message
        for secret in _secrets:
            if secret in cleaned:
                cleaned = cleaned.replace(secret, "***")
        if cleaned is not message and cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def register_secret(value: str | None) -> None:
    """Redact ``value`` from the request-logging loggers from now on."""
    global _installed
    if not value or len(value) < 8:
        return
    with _lock:
        _secrets.add(value)
        if not _installed:
            redactor = _RedactSecrets()
            for name in _LOGGERS:
                logging.getLogger(name).addFilter(redactor)
            _installed = True
