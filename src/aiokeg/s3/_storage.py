"""``AsyncS3Storage``: S3 (and S3-compatible servers) through aiobotocore."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, TypeGuard

from .._aio import call_progress, gather_all, run_shielded
from .._base import AsyncStorage
from .._errors import StorageError
from .._files import AsyncReader, AsyncWriter
from .._localfs import AtomicLocalFile
from .._types import ListEntry, ObjectInfo, ProgressCallback, ShareLinkOperation
from .._validate import TransferSettings, check_key
from ._client import S3Context
from ._http import Credentials, CredentialSource, DataPath, data_path_for
from ._parts import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE
from ._reader import OPEN_WINDOW, AsyncS3Reader, fetch_range, open_object
from ._redact import register_secret
from ._retry import logger
from ._writer import AsyncS3Writer, _abort_upload

__all__ = ["AsyncS3Storage", "IncompleteUpload"]

_DELETE_BATCH = 1000
#: Stored headers a copy to another service keeps (Content-Type and metadata too).
_COPIED_HEADERS = ("ContentEncoding", "CacheControl", "ContentDisposition", "ContentLanguage")


class IncompleteUpload(NamedTuple):
    """A multipart upload that was started and never completed nor aborted."""

    key: str
    upload_id: str
    initiated: datetime


GiB = 1024**3


class AsyncS3Storage(AsyncStorage):
    """Objects in one S3 bucket (AWS, or any S3-compatible server via ``endpoint_url``).

    The first arguments are keg-storage's ``S3Storage``'s; the rest are
    keyword-only. Nothing touches the network until the first operation;
    use ``async with`` (or ``await storage.aclose()``) to close the client.

    Example::

        async with AsyncS3Storage("my-bucket", "eu-west-1") as storage:
            async with storage.open("reports/2026.csv", "wb") as f:
                await f.write(b"id,total\\n1,42\\n")
            print(await storage.list("reports/"))

    Args:
        bucket: the bucket's name.
        aws_region: region (default: botocore's configuration chain).
        aws_access_key_id: access key (default: botocore's credential chain).
        aws_secret_access_key: secret key.
        aws_profile: a profile of ``~/.aws/config``.
        name: this storage's name, as in keg-storage.
        endpoint_url: an S3-compatible server, e.g. ``http://127.0.0.1:9000``.
        aws_session_token: a temporary session token.
        chunk_size: part size of writes and range size of reads (5 MiB .. 5 GiB).
        max_concurrency: requests in flight per open file.
        max_attempts: tries per request, the first included.
        max_connections: size of the connection pools, shared by all files
            (default ``max(10, 4 × max_concurrency)``); the data path and the
            botocore client each have one.
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds to wait for data on an open connection.
        retry_base_delay: first backoff bound in seconds (doubles per attempt,
            full jitter, capped by ``retry_max_delay``).
        retry_max_delay: largest backoff bound in seconds.
        verify_md5: send ``Content-MD5`` with every upload (servers that
            validate it refuse a damaged body) and, where an ETag can be an
            MD5, compare it with the bytes sent. ETags of SSE-KMS and SSE-C
            objects are recognised as opaque and never compared; no
            integrity verdict deletes an object (see the guarantees page).
        multipart_copy_threshold: ``copy`` of larger objects uses concurrent
            ``UploadPartCopy`` (S3's ``CopyObject`` stops at 5 GiB).
        session: an existing ``aiobotocore`` session to create the client from.
        client_config: an ``AioConfig`` merged over aiokeg's own.

    Memory: one open reader or writer holds at most about
    ``(max_concurrency + 1) × chunk_size`` (72 MiB with the defaults).
    """

    def __init__(
        self,
        bucket: str,
        aws_region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_profile: str | None = None,
        name: str = "s3",
        *,
        endpoint_url: str | None = None,
        aws_session_token: str | None = None,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
        max_connections: int | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retry_base_delay: float = 0.1,
        retry_max_delay: float = 5.0,
        verify_md5: bool = True,
        multipart_copy_threshold: int = 5 * GiB,
        session: Any = None,
        client_config: Any = None,
    ) -> None:
        super().__init__(
            name,
            chunk_size=chunk_size,
            max_concurrency=max_concurrency,
            max_attempts=max_attempts,
        )
        if not isinstance(bucket, str) or not bucket:
            raise ValueError(f"bucket must be a non-empty str, got {bucket!r}")
        if max_connections is not None and max_connections < 1:
            raise ValueError(f"max_connections={max_connections} must be at least 1")
        for label, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not value > 0:
                raise ValueError(f"{label}={value!r} must be a positive number of seconds")
        if retry_base_delay < 0 or retry_max_delay < 0:
            raise ValueError("retry delays must not be negative")
        if not MIN_PART_SIZE <= multipart_copy_threshold <= MAX_PART_SIZE:
            raise ValueError(
                f"multipart_copy_threshold={multipart_copy_threshold} must be from 5 MiB to 5 GiB"
            )
        self.bucket = bucket
        self.region = aws_region
        self.endpoint_url = endpoint_url
        self.max_connections = max_connections or max(10, 4 * self.settings.max_concurrency)
        self.multipart_copy_threshold = multipart_copy_threshold
        self._profile = aws_profile
        self._credentials = (aws_access_key_id, aws_secret_access_key, aws_session_token)
        register_secret(aws_secret_access_key)
        register_secret(aws_session_token)
        self._timeouts = (connect_timeout, read_timeout)
        self._session = session
        self._client_config = client_config
        self._s3 = S3Context(
            bucket,
            self._create_client,
            data_factory=self._create_data_path,
            base_delay=retry_base_delay,
            max_delay=retry_max_delay,
            verify_md5=verify_md5,
        )

    def __repr__(self) -> str:
        # Never credentials: only what identifies the storage.
        endpoint = f" endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return (
            f"<AsyncS3Storage name={self.name!r} bucket={self.bucket!r}"
            f"{endpoint}{' closed' if self.closed else ''}>"
        )

    @property
    def retries(self) -> int:
        """How many requests were repeated after a retryable failure so far."""
        return self._s3.retries

    # -- client -----------------------------------------------------------------
    async def _create_client(self) -> Any:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import AioSession

        session = self._session or AioSession(profile=self._profile)
        self._session = session
        # botocore reads its JSON models and ~/.aws/config from disk: do that in
        # a worker thread, not on the event loop.
        await asyncio.to_thread(_warm_up, session)
        connect_timeout, read_timeout = self._timeouts
        config = AioConfig(
            max_pool_connections=self.max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # aiokeg retries itself (RetryPolicy): one attempt per botocore call.
            retries={"total_max_attempts": 1, "mode": "standard"},
            # SigV4 everywhere, presigned links included (SigV2 is deprecated).
            signature_version="s3v4",
            # aiokeg sends Content-MD5 and checks ETags; extra CRCs would cost
            # CPU and break servers that reject aws-chunked trailers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        if self._client_config is not None:
            config = config.merge(self._client_config)
        key_id, secret, token = self._credentials
        return session.create_client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=config,
        )

    async def _create_data_path(self, client: Any) -> DataPath | None:
        """The data path for this bucket, or None to send everything through ``client``."""
        key_id, secret, token = self._credentials
        source: CredentialSource
        if key_id and secret:
            fixed: Credentials = (key_id, secret, token)

            async def source() -> Credentials:
                return fixed

        else:
            chain = await self._session.get_credentials()
            if chain is None:
                return None

            async def source() -> Credentials:
                frozen = await chain.get_frozen_credentials()
                return frozen.access_key, frozen.secret_key, frozen.token

        connect_timeout, read_timeout = self._timeouts
        try:
            return await data_path_for(
                client,
                self.bucket,
                source,
                max_connections=self.max_connections,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            )
        except Exception as exc:  # the client then sends everything, and reports
            logger.debug("no data path for bucket %r: %s", self.bucket, exc)
            return None

    async def __aenter__(self) -> AsyncS3Storage:
        """Create the client now (sending no request), so the first operation need not."""
        await super().__aenter__()
        await self._s3.client()
        return self

    async def _aclose(self) -> None:
        await self._s3.aclose()

    # -- files ------------------------------------------------------------------
    async def _open_reader(self, key: str, settings: TransferSettings) -> AsyncReader:
        window = min(OPEN_WINDOW, settings.chunk_size)
        head, first = await open_object(self._s3, key, window, settings.max_attempts)
        return AsyncS3Reader(
            self._s3,
            key,
            size=int(head["ContentLength"]),
            etag=str(head["ETag"]).strip('"'),
            content_type=head.get("ContentType"),
            last_modified=head["LastModified"],
            metadata=dict(head.get("Metadata") or {}),
            settings=settings,
            first=first,
            headers={k: str(head[k]) for k in _COPIED_HEADERS if head.get(k)},
        )

    async def _open_writer(
        self,
        key: str,
        *,
        exclusive: bool,
        extra_args: Mapping[str, Any],
        settings: TransferSettings,
        size_hint: int | None,
    ) -> AsyncWriter:
        self._check_open()
        if exclusive and await self.exists(key):
            # Fail before any data is sent; the conditional request at commit
            # still guards against a racing writer.
            from .._errors import ObjectExistsError

            raise ObjectExistsError(
                f"s3://{self.bucket}/{key} already exists; mode 'xb' creates only new keys",
                bucket=self.bucket,
                key=key,
                operation="open",
            )
        return AsyncS3Writer(
            self._s3,
            key,
            exclusive=exclusive,
            extra_args=extra_args,
            settings=settings,
            size_hint=size_hint,
        )

    # -- listing ------------------------------------------------------------------
    async def _iter_pages(self, prefix: str) -> AsyncIterator[list[ListEntry]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            response = await self._s3.call(
                "list_objects_v2",
                None,
                max_attempts=self.settings.max_attempts,
                data=True,
                **params,
            )
            page = [
                ListEntry(
                    item["Key"],
                    item["LastModified"],
                    int(item["Size"]),
                    str(item.get("ETag", "")).strip('"') or None,
                )
                for item in response.get("Contents", [])
            ]
            if page:
                yield page
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return

    # -- single objects -------------------------------------------------------------
    async def _stat(self, key: str) -> ObjectInfo:
        head = await self._s3.call(
            "head_object", key, max_attempts=self.settings.max_attempts, data=True
        )
        return _info(key, head)

    async def _delete(self, key: str) -> None:
        await self._s3.call("delete_object", key, max_attempts=self.settings.max_attempts)

    async def _delete_keys(self, keys: list[str]) -> dict[str, BaseException]:
        failures: dict[str, BaseException] = {}
        limit = asyncio.Semaphore(self.settings.max_concurrency)

        async def batch(chunk: list[str]) -> None:
            async with limit:
                try:
                    response = await self._s3.call(
                        "delete_objects",
                        None,
                        max_attempts=self.settings.max_attempts,
                        Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                    )
                except StorageError as exc:
                    failures.update(dict.fromkeys(chunk, exc))
                    return
                for error in response.get("Errors", []):
                    failures[error["Key"]] = StorageError(
                        f"DeleteObjects could not delete s3://{self.bucket}/{error['Key']}: "
                        f"{error.get('Code')} ({error.get('Message')})",
                        bucket=self.bucket,
                        key=error["Key"],
                        operation="DeleteObjects",
                    )

        batches = [keys[i : i + _DELETE_BATCH] for i in range(0, len(keys), _DELETE_BATCH)]
        await asyncio.gather(*(batch(b) for b in batches))
        return failures

    async def _copy(self, key: str, new_key: str) -> None:
        await self.copy_from_bucket(self.bucket, key, new_key)

    def same_service(self, other: object) -> TypeGuard[AsyncS3Storage]:
        """True if ``other`` reaches the same S3 service with the same credentials.

        Then objects can be copied between the two buckets server-side.
        """
        return (
            isinstance(other, AsyncS3Storage)
            and other.endpoint_url == self.endpoint_url
            and other.region == self.region
            and other._profile == self._profile
            and other._credentials == self._credentials
        )

    async def copy_from_bucket(self, bucket: str, key: str, new_key: str) -> int:
        """Copy ``bucket/key`` into this storage as ``new_key``, server-side; return its size.

        Objects above ``multipart_copy_threshold`` use concurrent ``UploadPartCopy``.
        Every request is pinned to the source version seen first (``If-Match``).

        Raises:
            ObjectNotFoundError: the source does not exist.
        """
        self._check_open()
        check_key(key)
        check_key(new_key, what="new_key")
        head = await self._s3.call(
            "head_object", key, max_attempts=self.settings.max_attempts, bucket=bucket
        )
        size, etag = int(head["ContentLength"]), str(head["ETag"])
        source = {"Bucket": bucket, "Key": key}
        if size <= self.multipart_copy_threshold:
            await self._s3.call(
                "copy_object",
                new_key,
                max_attempts=self.settings.max_attempts,
                CopySource=source,
                CopySourceIfMatch=etag,
            )
        else:
            await self._multipart_copy(source, new_key, head, size, etag)
        return size

    async def _multipart_copy(
        self, source: dict[str, str], new_key: str, head: dict[str, Any], size: int, etag: str
    ) -> None:
        settings = self.settings
        part_size = max(settings.chunk_size, math.ceil(size / MAX_PARTS))
        extra: dict[str, Any] = {"Metadata": dict(head.get("Metadata") or {})}
        for name in ("ContentType", "ContentEncoding", "ContentDisposition", "CacheControl"):
            if head.get(name):
                extra[name] = head[name]
        created = await self._s3.call(
            "create_multipart_upload", new_key, max_attempts=settings.max_attempts, **extra
        )
        upload_id = str(created["UploadId"])
        limit = asyncio.Semaphore(settings.max_concurrency)
        etags: dict[int, str] = {}

        async def part(number: int, start: int) -> None:
            stop = min(size, start + part_size) - 1
            async with limit:
                response = await self._s3.call(
                    "upload_part_copy",
                    new_key,
                    max_attempts=settings.max_attempts,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{stop}",
                    CopySourceIfMatch=etag,
                )
            etags[number] = str(response["CopyPartResult"]["ETag"])

        tasks = [
            asyncio.ensure_future(part(n, start))
            for n, start in enumerate(range(0, size, part_size), start=1)
        ]
        try:
            await asyncio.gather(*tasks)
            await self._s3.call(
                "complete_multipart_upload",
                new_key,
                max_attempts=settings.max_attempts,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(etags.items())]
                },
            )
        except BaseException:
            for task in tasks:
                task.cancel()
            await run_shielded(self._abort_copy(tasks, new_key, upload_id))
            raise

    async def _abort_copy(
        self, tasks: Sequence[asyncio.Future[None]], key: str, upload_id: str
    ) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        await _abort_upload(self._s3, key, upload_id, self.settings.max_attempts)

    async def _link(
        self,
        key: str,
        operation: ShareLinkOperation,
        expires_in: int,
        output_path: str | None,
        content_type: str | None,
        content_encoding: str | None,
    ) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if operation is ShareLinkOperation.download:
            method = "get_object"
            if output_path:
                filename = os.path.basename(output_path).replace('"', "")
                params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
            if content_type:
                params["ResponseContentType"] = content_type
            if content_encoding:
                params["ResponseContentEncoding"] = content_encoding
        elif operation is ShareLinkOperation.upload:
            method = "put_object"
            params["ContentType"] = content_type or "application/octet-stream"
            if content_encoding:
                params["ContentEncoding"] = content_encoding
        else:
            method = "delete_object"
        client = await self._s3.client()
        url: str = await client.generate_presigned_url(
            ClientMethod=method, Params=params, ExpiresIn=expires_in
        )
        return url

    # -- incomplete uploads -------------------------------------------------------------
    async def list_incomplete_uploads(self, prefix: str = "") -> list[IncompleteUpload]:
        """Multipart uploads under ``prefix`` that were never completed nor aborted.

        aiokeg's writers abort their own uploads; these are left by crashed
        processes or other tools. They cost storage until aborted.
        """
        self._check_open()
        found: list[IncompleteUpload] = []
        markers: dict[str, Any] = {}
        while True:
            response = await self._s3.call(
                "list_multipart_uploads",
                None,
                max_attempts=self.settings.max_attempts,
                Prefix=prefix,
                **markers,
            )
            for item in response.get("Uploads", []):
                found.append(IncompleteUpload(item["Key"], item["UploadId"], item["Initiated"]))
            if not response.get("IsTruncated"):
                return found
            markers = {
                "KeyMarker": response.get("NextKeyMarker", ""),
                "UploadIdMarker": response.get("NextUploadIdMarker", ""),
            }

    async def abort_incomplete_uploads(
        self, prefix: str = "", *, older_than: timedelta = timedelta(0)
    ) -> list[IncompleteUpload]:
        """Abort incomplete uploads under ``prefix`` started more than ``older_than`` ago.

        Returns the uploads aborted. Keep ``older_than`` above your longest
        upload so that uploads still in progress elsewhere are spared.
        """
        cutoff = datetime.now(timezone.utc) - older_than
        stale = [u for u in await self.list_incomplete_uploads(prefix) if u.initiated <= cutoff]
        limit = asyncio.Semaphore(self.settings.max_concurrency)
        attempts = self.settings.max_attempts

        async def abort(upload: IncompleteUpload) -> None:
            async with limit:
                await _abort_upload(self._s3, upload.key, upload.upload_id, attempts)

        await asyncio.gather(*(abort(u) for u in stale))
        return stale

    # -- transfers -------------------------------------------------------------------
    async def get(
        self,
        path: str,
        dest: str | os.PathLike[str],
        *,
        progress_callback: ProgressCallback | None = None,
    ) -> int:
        """Download ``path`` to the local file ``dest`` with concurrent ranged GETs.

        Ranges are written at their offsets as they arrive (``max_concurrency``
        in flight, each pinned to the version seen at open), into a temporary
        file renamed into place once the size is verified. On failure the
        temporary file is removed and ``dest`` is untouched.
        """
        key = check_key(path)
        self._check_open()
        settings = self.settings
        info = await self._stat(key)
        size, etag = info.size, info.etag
        step = settings.chunk_size
        offsets = iter(range(0, size, step))
        done = 0

        async def worker(out: AtomicLocalFile) -> None:
            nonlocal done
            for start in offsets:
                stop = min(size, start + step)
                data = await fetch_range(
                    self._s3, key, etag, size, start, stop, settings.max_attempts
                )
                await out.pwrite_parts(data.parts, start)
                done += len(data)
                del data
                await call_progress(progress_callback, done)

        async with AtomicLocalFile(dest) as out:
            await out.truncate(size)
            workers = min(settings.max_concurrency, max(1, math.ceil(size / step)))
            await gather_all(worker(out) for _ in range(workers))
            if done != size:
                raise StorageError(
                    f"downloaded {done} of {size} bytes of s3://{self.bucket}/{key}",
                    bucket=self.bucket,
                    key=key,
                    operation="get",
                )
        if size == 0:
            await call_progress(progress_callback, 0)
        return size


def _info(key: str, head: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        name=key,
        size=int(head["ContentLength"]),
        last_modified=head["LastModified"],
        etag=str(head["ETag"]).strip('"'),
        content_type=head.get("ContentType"),
        metadata=dict(head.get("Metadata") or {}),
    )


def _warm_up(session: Any) -> None:
    """Load what botocore reads from disk when a client is created (runs in a thread).

    botocore caches what it loads, keyed by the exact call, so the calls
    below mirror the ones ``create_client`` makes.
    """
    session.get_scoped_config()
    warm = getattr(session, "warm_up_loader_caches", None)
    if warm is not None:
        warm("s3")
        return
    loader = session.get_component("data_loader")
    for name in ("_retry", "endpoints", "partitions", "sdk-default-configuration"):
        with contextlib.suppress(Exception):
            loader.load_data_with_path(name)
    loader.load_service_model("s3", type_name="service-2", api_version=None)
    loader.load_service_model("s3", "service-2", api_version=None)
    with contextlib.suppress(Exception):
        loader.load_service_model("s3", "paginators-1", None)
    with contextlib.suppress(Exception):
        loader.load_service_model("s3", "waiters-2", None)
    loader.load_service_model("s3", "endpoint-rule-set-1", api_version=None)
