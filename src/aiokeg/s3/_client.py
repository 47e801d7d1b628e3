"""The aiobotocore client of one storage, and the retrying call every S3 request goes through."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import botocore.exceptions
from botocore.handlers import add_expect_header

from .._errors import StorageClosedError, StorageError
from ._errors import translate
from ._http import DataPath
from ._retry import RetryPolicy, logger

__all__ = ["S3Context", "md5_of"]

T = TypeVar("T")

#: Above this size an MD5 is computed in a worker thread (hashlib releases
#: the GIL), so hashing a part never stalls the event loop.
_THREAD_HASH_MIN = 256 * 1024


async def md5_of(data: bytes | bytearray | memoryview) -> bytes:
    """MD5 digest of ``data``, off the event loop for large buffers."""
    if len(data) < _THREAD_HASH_MIN:
        return hashlib.md5(data, usedforsecurity=False).digest()
    return await asyncio.to_thread(_md5, data)


def _md5(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def content_md5(digest: bytes) -> str:
    """The ``Content-MD5`` header value of a digest."""
    return base64.b64encode(digest).decode("ascii")


def _api_name(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


class S3Context:
    """What readers and writers share with their storage: the client, the bucket, retries.

    The aiobotocore client is created on first use (never in ``__init__``),
    and owned here: :meth:`aclose` closes it after waiting for background
    clean-ups (aborts of uploads whose writers were garbage-collected).
    """

    def __init__(
        self,
        bucket: str,
        client_factory: Callable[[], Awaitable[Any]],
        *,
        data_factory: Callable[[Any], Awaitable[DataPath | None]] | None = None,
        base_delay: float,
        max_delay: float,
        verify_md5: bool,
    ) -> None:
        self.bucket = bucket
        self.verify_md5 = verify_md5
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._factory = client_factory
        self._client: Any = None
        self._data_factory = data_factory
        self._data: DataPath | None = None
        self._lock = asyncio.Lock()
        self._stack = AsyncExitStack()
        self._background: set[asyncio.Task[Any]] = set()
        self.closed = False
        #: Requests repeated after a retryable failure, over this storage's life.
        self.retries = 0
        #: Whether the server refuses a body whose Content-MD5 does not match
        #: (None until an ETag mismatch made aiokeg find out; see _integrity).
        self.server_checks_md5: bool | None = None
        self.probe_lock = asyncio.Lock()

    def policy(self, max_attempts: int) -> RetryPolicy:
        """The retry policy of a request allowed ``max_attempts`` tries."""
        return RetryPolicy(max_attempts, self.base_delay, self.max_delay)

    async def client(self) -> Any:
        """The aiobotocore S3 client, created on first use."""
        if self.closed:
            raise StorageClosedError(
                f"the storage for bucket {self.bucket!r} is closed: create a new one",
                bucket=self.bucket,
            )
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        cm = await self._factory()
                        client = await self._stack.enter_async_context(cm)
                    except botocore.exceptions.BotoCoreError as exc:
                        # ProfileNotFound, a bad config file, an unknown region...
                        raise StorageError(
                            f"could not create the S3 client for bucket {self.bucket!r}: {exc}",
                            bucket=self.bucket,
                            operation="create_client",
                        ) from exc
                    # botocore asks for "Expect: 100-continue" on every file-like
                    # body. That costs a round trip per part, and aiohttp waits
                    # for the 100 with no timeout: a server that stalls there
                    # would hang the upload forever. Send bodies directly.
                    client.meta.events.unregister("before-call.s3", add_expect_header)
                    if self._data_factory is not None:
                        data = await self._data_factory(client)
                        if data is not None:
                            self._stack.push_async_callback(data.close)
                            self._data = data
                    self._client = client
        return self._client

    async def data_client(self) -> Any:
        """What sends the requests that move data: the data path, or else the client."""
        client = await self.client()
        return self._data or client

    async def can_put(self, params: dict[str, Any]) -> bool:
        """True if the data path can send a PutObject with these extra parameters."""
        await self.client()
        return self._data is not None and self._data.put_headers(params) is not None

    async def call(
        self,
        method: str,
        key: str | None,
        *,
        max_attempts: int,
        exclusive: bool = False,
        check: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        bucket: str | None = None,
        data: bool = False,
        **params: Any,
    ) -> dict[str, Any]:
        """Call ``client.<method>(Bucket=..., Key=key, **params)`` with retries.

        ``check`` may inspect a successful response and raise
        ``IntegrityError`` to have the request repeated. Failures come out
        translated (``ObjectNotFoundError``, ``TransferError``...), chained
        to the botocore/aiohttp original. ``data`` sends it on the data path
        (``head_object``, ``get_object``, ``put_object``, ``upload_part``).
        """
        if key is not None:
            params["Key"] = key

        async def once(client: Any) -> dict[str, Any]:
            response: dict[str, Any] = await getattr(client, method)(
                Bucket=bucket or self.bucket, **params
            )
            if check is not None:
                await check(response)
            return response

        return await self.run(
            _api_name(method),
            key,
            once,
            max_attempts=max_attempts,
            exclusive=exclusive,
            data=data and (bucket is None or bucket == self.bucket),
        )

    async def run(
        self,
        operation: str,
        key: str | None,
        attempt: Callable[[Any], Awaitable[T]],
        *,
        max_attempts: int,
        exclusive: bool = False,
        data: bool = False,
    ) -> T:
        """Run ``attempt(client)`` with retries; translate the final failure.

        ``client`` is the aiobotocore client, or with ``data`` the data path
        when there is one (it takes the same calls for the four requests it sends).
        """
        client = await (self.data_client() if data else self.client())
        attempts = 0

        async def once(n: int) -> T:
            nonlocal attempts
            attempts = n
            return await attempt(client)

        try:
            return await self.policy(max_attempts).run(
                once, describe=f"{operation} {key or ''}", on_retry=self._count_retry
            )
        except StorageError:
            raise
        except Exception as exc:
            raise translate(
                exc,
                bucket=self.bucket,
                key=key,
                operation=operation,
                attempts=attempts,
                exclusive=exclusive,
            ) from exc

    def _count_retry(self, exc: BaseException) -> None:
        self.retries += 1

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a clean-up in the background; :meth:`aclose` waits for it."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Wait for background clean-ups, then close the client."""
        if self.closed:
            return
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self.closed = True
        await self._stack.aclose()
        self._client = None
        self._data = None
        logger.debug("closed S3 client for bucket %r", self.bucket)
