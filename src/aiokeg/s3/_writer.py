"""The S3 writer: concurrent multipart upload that never publishes a partial object."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Awaitable, Mapping
from typing import Any

from .._aio import run_shielded
from .._errors import ObjectExistsError, ObjectNotFoundError, StorageError, TransferError
from .._files import AsyncWriter
from .._validate import TransferSettings
from ._client import S3Context, content_md5, md5_of
from ._errors import IntegrityError
from ._http import DataPath
from ._integrity import check_upload
from ._parts import MAX_OBJECT_SIZE, MAX_PARTS, PartSizer
from ._retry import logger

__all__ = ["AsyncS3Writer"]

#: Parameters of CreateMultipartUpload that UploadPart must carry too.
_PART_PARAMS = {
    "SSECustomerAlgorithm",
    "SSECustomerKey",
    "SSECustomerKeyMD5",
    "RequestPayer",
    "ExpectedBucketOwner",
}


class AsyncS3Writer(AsyncWriter):
    """Writes one S3 object; get it from ``storage.open(key, "wb")``.

    Data is cut into parts of ``chunk_size`` bytes. The multipart upload is
    created lazily, when more data arrives after the first part is full: an
    object that fits in one part (zero bytes included) is sent with a single
    ``PutObject`` on :meth:`close`. Full parts upload as concurrent tasks, at
    most ``max_concurrency`` at a time; when that many are in flight,
    :meth:`write` waits. Memory therefore stays within about
    ``(max_concurrency + 1) × chunk_size`` however fast the caller writes
    (objects above ``900 × chunk_size`` use larger parts, see ``PartSizer``).

    Parts may finish in any order; their ETags are kept by part number and
    sent sorted to ``CompleteMultipartUpload``. Each part's ETag is checked
    against the MD5 of the bytes sent (``verify_md5``), and a mismatch is
    retried like a network error, so a body damaged in flight never becomes
    part of the object.

    A part that still fails after ``max_attempts`` makes the writer abort;
    the error (:class:`TransferError`) comes out of the next :meth:`write` or
    :meth:`close`. An exception or cancellation inside ``async with`` aborts
    too. Either way nothing is published and no incomplete upload is left.
    """

    def __init__(
        self,
        s3: S3Context,
        key: str,
        *,
        exclusive: bool,
        extra_args: Mapping[str, Any],
        settings: TransferSettings,
        size_hint: int | None,
    ) -> None:
        super().__init__(key)
        self._s3 = s3
        self._exclusive = exclusive
        self._extra = dict(extra_args)
        # What every part must repeat of the create's parameters (SSE-C keys
        # above all: AWS refuses a part of an SSE-C upload without them). The
        # data path does not send these; botocore does.
        self._part_params = {k: v for k, v in self._extra.items() if k in _PART_PARAMS}
        self._settings = settings
        self._sizer = PartSizer(settings.chunk_size, size_hint)
        self._part_size = self._sizer.size(1)
        # The part being filled: views of the caller's bytes (immutable, so
        # kept without a copy) or copies of mutable buffers. A part made of one
        # piece is sent as it is; several are joined once.
        self._pending: list[bytes | memoryview] = []
        self._pending_size = 0
        self._next_part = 1
        self._upload_id: str | None = None
        self._etags: dict[int, str] = {}
        self._digests: dict[int, bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._error: BaseException | None = None
        self._maybe_orphans = False

    @property
    def upload_id(self) -> str | None:
        """The multipart upload's id, once one was created."""
        return self._upload_id

    @property
    def _where(self) -> str:
        return f"s3://{self._s3.bucket}/{self.name}"

    # -- writing ------------------------------------------------------------
    async def _write(self, data: memoryview) -> None:
        if self._written + data.nbytes > MAX_OBJECT_SIZE:
            raise StorageError(
                f"{self._where} would exceed S3's 5 TiB object limit; nothing was published",
                bucket=self._s3.bucket,
                key=self.name,
                operation="write",
            )
        while data:
            self._raise_if_failed()
            room = self._part_size - self._pending_size
            if room == 0:
                # Only now is it known that the object needs more than this part.
                await self._send_part()
                continue
            piece: bytes | memoryview = data[:room]
            if not isinstance(data.obj, bytes):
                piece = bytes(piece)  # the caller may reuse its buffer after write()
            self._pending.append(piece)
            self._pending_size += len(piece)
            data = data[room:]

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    async def _send_part(self) -> None:
        part_number = self._next_part
        if part_number > MAX_PARTS:
            raise StorageError(
                f"{self._where} needs more than {MAX_PARTS} parts: the data outgrew the "
                "size_hint given to open(); pass a larger size_hint (or none)",
                bucket=self._s3.bucket,
                key=self.name,
                operation="UploadPart",
            )
        if self._upload_id is None:
            await self._create_upload()
        # Large parts (objects past 900 parts) take several slots, so the
        # bytes in flight stay within max_concurrency × chunk_size.
        size = self._pending_size
        cost = min(self._settings.max_concurrency, -(-size // self._settings.chunk_size))
        taken = 0
        try:
            while taken < cost:
                await self._slots.acquire()
                taken += 1
            self._raise_if_failed()
        except BaseException:
            for _ in range(taken):
                self._slots.release()
            raise
        data = self._take_pending()
        self._next_part += 1
        self._part_size = self._sizer.size(self._next_part)
        task = asyncio.create_task(self._upload_part(part_number, data, cost))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take_pending(self) -> bytes | memoryview:
        pending, self._pending, self._pending_size = self._pending, [], 0
        if len(pending) == 1:
            return pending[0]
        return b"".join(pending)

    async def _create_upload(self) -> None:
        # Shielded: a cancellation waits for the answer, so the upload the
        # server made is known here and the abort that follows removes it.
        await run_shielded(self._create_upload_now())

    async def _create_upload_now(self) -> None:
        attempts = 0

        async def once(client: Any) -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            # Until an attempt is answered, the server may hold an upload this
            # writer never learns of: the abort or the completion sweeps for it.
            self._maybe_orphans = True
            response: dict[str, Any] = await client.create_multipart_upload(
                Bucket=self._s3.bucket, Key=self.name, **self._extra
            )
            self._maybe_orphans = attempts > 1
            return response

        response = await self._s3.run(
            "CreateMultipartUpload", self.name, once, max_attempts=self._settings.max_attempts
        )
        self._upload_id = str(response["UploadId"])
        logger.debug("started multipart upload %s for %s", self._upload_id, self._where)

    async def _upload_part(self, part_number: int, data: bytes | memoryview, cost: int) -> None:
        what = f"part {part_number} of {self._where}"
        try:
            digest = await md5_of(data) if self._s3.verify_md5 else None

            async def send(client: Any, md5: str | None) -> dict[str, Any]:
                response: dict[str, Any] = await client.upload_part(
                    Bucket=self._s3.bucket,
                    Key=self.name,
                    UploadId=self._upload_id,
                    PartNumber=part_number,
                    Body=_body_for(client, data),
                    ContentLength=len(data),
                    **({"ContentMD5": md5} if md5 else {}),
                    **self._part_params,
                )
                return response

            async def once(client: Any) -> Mapping[str, Any]:
                response = await send(client, content_md5(digest) if digest else None)
                return await check_upload(
                    self._s3, response, digest, what, lambda md5: send(client, md5), self._extra
                )

            response = await self._s3.run(
                "UploadPart",
                self.name,
                once,
                max_attempts=self._settings.max_attempts,
                data=not self._part_params,
            )
            self._etags[part_number] = str(response["ETag"])
            if digest is not None:
                self._digests[part_number] = digest
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._error is None:
                self._error = _part_error(exc, self._s3.bucket, self.name, part_number)
                self._error.__cause__ = exc
        finally:
            for _ in range(cost):
                self._slots.release()

    # -- committing -----------------------------------------------------------
    async def _commit(self) -> None:
        self._raise_if_failed()
        if self._upload_id is None:
            await self._put_object()
            return
        if self._pending_size:
            await self._send_part()
        while self._tasks:
            await asyncio.gather(*self._tasks)
        self._raise_if_failed()
        await self._complete()

    async def _put_object(self) -> None:
        data = self._take_pending()
        digest = await md5_of(data) if self._s3.verify_md5 else None
        params: dict[str, Any] = dict(self._extra)
        if self._exclusive:
            params["IfNoneMatch"] = "*"
        params["Key"] = self.name

        async def send(client: Any, md5: str | None, pin: str | None = None) -> dict[str, Any]:
            sent = dict(params)
            if md5:
                sent["ContentMD5"] = md5
            if pin is not None:
                sent.pop("IfNoneMatch", None)
                sent["IfMatch"] = pin
            response: dict[str, Any] = await client.put_object(
                Bucket=self._s3.bucket,
                Body=_body_for(client, data),
                ContentLength=len(data),
                **sent,
            )
            return response

        async def once(client: Any) -> None:
            response = await send(client, content_md5(digest) if digest else None)

            def probe(md5: str) -> Awaitable[dict[str, Any]]:
                # Pinned to the version this very request stored.
                return send(client, md5, str(response["ETag"]))

            try:
                await check_upload(self._s3, response, digest, self._where, probe, self._extra)
            except IntegrityError as exc:
                # The damaged body is published: a retry replaces exactly the
                # version aiokeg itself stored (and an exclusive create must not
                # trip over it), never another writer's.
                params.pop("IfNoneMatch", None)
                params["IfMatch"] = exc.etag or str(response["ETag"])
                raise

        data_path = await self._s3.can_put(self._extra)

        async def publish() -> None:
            try:
                await self._s3.run(
                    "PutObject",
                    self.name,
                    once,
                    max_attempts=self._settings.max_attempts,
                    exclusive=self._exclusive,
                    data=data_path,
                )
            except TransferError as exc:
                if "IfMatch" in params:
                    raise await self._damaged(params["IfMatch"], exc) from exc
                raise
            self._published = True

        # Once the PUT is on its way, a cancellation waits for its answer:
        # close() never returns or raises while the object may still appear.
        await run_shielded(publish())

    async def _damaged(self, etag: str, exc: TransferError) -> TransferError:
        """The error for a body the server damaged on every attempt (already published).

        Only an exclusive create removes it: then nothing was there before
        and the version carrying ``etag`` is aiokeg's own. Otherwise it
        replaced the caller's previous object, and deleting it is the
        caller's decision, not an integrity check's.
        """
        fate = "it was left in place: write it again, or delete it"
        if self._exclusive:
            try:
                await self._s3.call(
                    "delete_object",
                    self.name,
                    max_attempts=self._settings.max_attempts,
                    IfMatch=etag,
                )
                fate = "it was removed (mode 'xb': nothing was there before)"
            except StorageError:
                fate = "removing it failed: delete it"
        return TransferError(
            f"{self._where}: the server stored a damaged body on every one of "
            f"{exc.attempts or self._settings.max_attempts} attempt(s) (MD5 of what it "
            f"holds differs from the bytes sent); the object holds that damaged upload "
            f"(ETag {etag}) and {fate}",
            bucket=self._s3.bucket,
            key=self.name,
            operation="PutObject",
            attempts=exc.attempts,
        )

    async def _complete(self) -> None:
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in sorted(self._etags.items())]
        params: dict[str, Any] = {"IfNoneMatch": "*"} if self._exclusive else {}
        if self._exclusive and await self._key_exists():
            # Some servers (Ceph RGW 16) ignore If-None-Match on Complete: check
            # once more here, which narrows the race to this round trip.
            raise ObjectExistsError(
                f"{self._where} appeared while it was being written; mode 'xb' creates "
                "only new keys (the existing object was left untouched)",
                bucket=self._s3.bucket,
                key=self.name,
                operation="CompleteMultipartUpload",
            )
        # Shielded like the single PUT: nothing is published after close().
        await run_shielded(self._complete_now(parts, params))

    async def _complete_now(self, parts: list[dict[str, Any]], params: dict[str, Any]) -> None:
        try:
            await self._s3.call(
                "complete_multipart_upload",
                self.name,
                max_attempts=self._settings.max_attempts,
                exclusive=self._exclusive,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
                **params,
            )
        except StorageError as exc:
            # A Complete whose answer was lost may have succeeded; if the object
            # now carries exactly our multipart ETag, it is ours and whole.
            if not isinstance(exc, ObjectExistsError) and await self._completed_anyway():
                self._published = True
                self._upload_id = None
                await self._abort_orphans(None)
                return
            raise
        self._published = True
        await self._abort_orphans(self._upload_id)
        self._upload_id = None

    async def _key_exists(self) -> bool:
        try:
            await self._s3.call("head_object", self.name, max_attempts=self._settings.max_attempts)
        except ObjectNotFoundError:
            return False
        return True

    async def _completed_anyway(self) -> bool:
        if len(self._digests) != len(self._etags) or not self._digests:
            return False
        joined = b"".join(self._digests[n] for n in sorted(self._digests))
        expected = (
            f'"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(self._digests)}"'
        )
        try:
            head = await self._s3.call("head_object", self.name, max_attempts=1)
        except StorageError:
            return False
        return bool(head.get("ETag") == expected)

    # -- aborting -------------------------------------------------------------
    async def _abort(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._take_pending()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            await _abort_upload(self._s3, self.name, upload_id, self._settings.max_attempts)
        await self._abort_orphans(upload_id)

    async def _abort_orphans(self, ours: str | None) -> None:
        """Abort uploads of this key that a lost CreateMultipartUpload answer left behind.

        Candidates are uploads of exactly this key, other than ours, with no
        part: an orphan never gets one, while another writer's upload has
        none only in the moment between its create and its first part.
        """
        if not self._maybe_orphans:
            return
        self._maybe_orphans = False
        attempts = self._settings.max_attempts
        try:
            listing = await self._s3.call(
                "list_multipart_uploads", None, max_attempts=attempts, Prefix=self.name
            )
            for upload in listing.get("Uploads", []):
                if upload["Key"] != self.name or upload["UploadId"] in (ours, self._upload_id):
                    continue
                parts = await self._s3.call(
                    "list_parts", self.name, max_attempts=attempts, UploadId=upload["UploadId"]
                )
                if not parts.get("Parts"):
                    await _abort_upload(self._s3, self.name, upload["UploadId"], attempts)
        except StorageError as exc:
            logger.warning("%s: could not look for orphaned uploads: %s", self._where, exc)

    def _leak_cleanup(self) -> None:
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            logger.warning(
                "%s: writer collected outside an event loop; multipart upload %s is left "
                "open (abort_incomplete_uploads() removes it)",
                self._where,
                upload_id,
            )
            return
        self._s3.spawn(_abort_upload(self._s3, self.name, upload_id, self._settings.max_attempts))


async def _abort_upload(s3: S3Context, key: str, upload_id: str, max_attempts: int) -> None:
    try:
        await s3.call("abort_multipart_upload", key, max_attempts=max_attempts, UploadId=upload_id)
    except StorageError as exc:
        code = getattr(exc.__cause__, "response", {}).get("Error", {}).get("Code")
        if code in ("NoSuchUpload", "NoSuchKey"):  # already gone (RGW says NoSuchKey)
            return
        logger.warning(
            "could not abort multipart upload %s of s3://%s/%s: %s",
            upload_id,
            s3.bucket,
            key,
            exc,
        )
    else:
        logger.debug("aborted multipart upload %s of s3://%s/%s", upload_id, s3.bucket, key)


def _body_for(client: Any, data: bytes | memoryview) -> bytes | memoryview | io.BytesIO:
    """The data path sends ``data`` as it is; botocore wants a file object."""
    return data if isinstance(client, DataPath) else io.BytesIO(data)


def _part_error(exc: Exception, bucket: str, key: str, part_number: int) -> StorageError:
    if isinstance(exc, StorageError) and not isinstance(exc, TransferError):
        return exc
    attempts = getattr(exc, "attempts", None)
    return TransferError(
        f"part {part_number} of s3://{bucket}/{key} failed"
        + (f" after {attempts} attempt(s)" if attempts else "")
        + f": {exc}; the upload was aborted and nothing was published",
        bucket=bucket,
        key=key,
        operation="UploadPart",
        attempts=attempts,
        part_number=part_number,
    )
