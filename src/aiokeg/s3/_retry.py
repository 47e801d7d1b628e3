"""Bounded retries with exponential backoff and full jitter, shared by every S3 request."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._errors import is_retryable
from ._redact import scrub_exception

__all__ = ["RetryPolicy", "logger"]

logger = logging.getLogger("aiokeg.s3")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is repeated.

    Attributes:
        max_attempts: tries, the first included (1 means no retry).
        base_delay: the first backoff's upper bound, in seconds; it doubles
            with each attempt (full jitter: the wait is uniform in 0..bound).
        max_delay: the largest backoff bound, in seconds.
    """

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        bound = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0, bound)

    async def run(
        self,
        attempt_fn: Callable[[int], Awaitable[T]],
        *,
        describe: str,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> T:
        """Call ``attempt_fn(attempt)`` until it succeeds or attempts run out.

        Only retryable errors (see ``is_retryable``) are repeated; the last
        error is raised as it is, for the caller to translate.
        """
        attempt = 1
        while True:
            try:
                return await attempt_fn(attempt)
            except Exception as exc:
                scrub_exception(exc)
                if attempt >= self.max_attempts or not is_retryable(exc):
                    raise
                delay = self.backoff(attempt)
                logger.debug(
                    "%s: attempt %d/%d failed (%s: %s); retrying in %.2fs",
                    describe,
                    attempt,
                    self.max_attempts,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                if on_retry is not None:
                    on_retry(exc)
                await asyncio.sleep(delay)
                attempt += 1
