"""Checks on user input, run before any request is sent or any file touched."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from ._errors import InvalidPathError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CONCURRENCY",
    "MAX_KEY_BYTES",
    "MAX_LINK_EXPIRY",
    "TransferSettings",
    "check_key",
    "check_prefix",
    "expiry_seconds",
]

MiB = 1024 * 1024
GiB = 1024 * MiB

#: S3's smallest non-last part; also the smallest chunk_size accepted.
MIN_CHUNK_SIZE = 5 * MiB
#: S3's largest part.
MAX_CHUNK_SIZE = 5 * GiB
#: Part and range size (see docs/tuning.md for the measurements behind it).
DEFAULT_CHUNK_SIZE = 8 * MiB
#: Requests in flight per open file.
DEFAULT_MAX_CONCURRENCY = 8
#: Tries per request, the first included.
DEFAULT_MAX_ATTEMPTS = 5
#: S3's limit on key length, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: SigV4 presigned URLs live at most seven days.
MAX_LINK_EXPIRY = timedelta(days=7)


@dataclasses.dataclass(frozen=True)
class TransferSettings:
    """The three knobs of an open file, validated.

    Attributes:
        chunk_size: part size of writes and range size of prefetched reads.
        max_concurrency: requests in flight per open file.
        max_attempts: tries per request, the first included.
    """

    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def __post_init__(self) -> None:
        _check_int("chunk_size", self.chunk_size)
        _check_int("max_concurrency", self.max_concurrency)
        _check_int("max_attempts", self.max_attempts)
        if not MIN_CHUNK_SIZE <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(
                f"chunk_size={self.chunk_size} is outside S3's part size limits: "
                f"use a value from {MIN_CHUNK_SIZE} (5 MiB) to {MAX_CHUNK_SIZE} (5 GiB)"
            )
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency={self.max_concurrency} must be at least 1")
        if self.max_attempts < 1:
            raise ValueError(
                f"max_attempts={self.max_attempts} must be at least 1 (1 means no retries)"
            )

    def override(
        self,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
    ) -> TransferSettings:
        """Return a copy with the given knobs replaced (``None`` keeps the current value)."""
        return TransferSettings(
            chunk_size=self.chunk_size if chunk_size is None else chunk_size,
            max_concurrency=self.max_concurrency if max_concurrency is None else max_concurrency,
            max_attempts=self.max_attempts if max_attempts is None else max_attempts,
        )

    @property
    def memory_bound(self) -> int:
        """Bytes one open reader or writer holds at most: ``(max_concurrency + 1) × chunk_size``."""
        return (self.max_concurrency + 1) * self.chunk_size


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")


def check_key(key: object, *, what: str = "key") -> str:
    """Return ``key`` if it can name an object on every backend, else raise.

    Raises:
        InvalidPathError: empty, not a str, over 1024 UTF-8 bytes, or holding a NUL.
    """
    if not isinstance(key, str):
        raise InvalidPathError(f"{what} must be a str, got {type(key).__name__} {key!r}", key=None)
    if not key:
        raise InvalidPathError(f"{what} is empty: give the object's key, such as 'dir/file.bin'")
    if "\x00" in key:
        raise InvalidPathError(f"{what} {key!r} contains a NUL character, which no backend allows")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidPathError(f"{what} {key!r} is not valid Unicode: {exc.reason}") from exc
    if size > MAX_KEY_BYTES:
        raise InvalidPathError(
            f"{what} is {size} UTF-8 bytes long; S3 allows at most {MAX_KEY_BYTES}: "
            f"shorten it (it starts {key[:40]!r})"
        )
    return key


def check_prefix(prefix: object) -> str:
    """Return a listing prefix (``""`` lists everything), else raise ``InvalidPathError``."""
    if prefix == "":
        return ""
    return check_key(prefix, what="prefix")


def expiry_seconds(
    expire: datetime | timedelta | int | float, *, now: datetime | None = None
) -> int:
    """Seconds until ``expire``, checked against SigV4's 1 s .. 7 days window.

    ``expire`` is an absolute time (as in keg-storage; a naive datetime is
    taken as UTC), a ``timedelta`` or a number of seconds.

    Raises:
        ValueError: in the past, now, or beyond seven days.
    """
    now = now or datetime.now(timezone.utc)
    if isinstance(expire, datetime):
        when = expire if expire.tzinfo else expire.replace(tzinfo=timezone.utc)
        delta = when - now
    elif isinstance(expire, timedelta):
        delta = expire
    elif isinstance(expire, (int, float)) and not isinstance(expire, bool):
        delta = timedelta(seconds=expire)
    else:
        raise TypeError(
            f"expire must be a datetime, a timedelta or seconds, got {type(expire).__name__}"
        )
    seconds = int(delta.total_seconds())
    if seconds < 1:
        raise ValueError(
            f"expire is in the past ({delta} from now): give a time in the future, "
            "at most 7 days ahead"
        )
    if delta > MAX_LINK_EXPIRY:
        raise ValueError(f"expire is {delta} from now; presigned links (SigV4) last at most 7 days")
    return seconds
