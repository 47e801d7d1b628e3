"""Errors raised by aiokeg.

Every error aiokeg raises on purpose derives from :class:`StorageError`.
Where a builtin exception has the same meaning, the aiokeg error inherits it
too, so ``except FileNotFoundError`` keeps working::

    Exception
    └── StorageError                       any storage failure; .bucket .key .operation
        ├── ObjectNotFoundError            (also FileNotFoundError) key does not exist
        │   = FileNotFoundInStorageError   alias kept for keg-storage users
        ├── ObjectExistsError              (also FileExistsError) "xb" found the key
        ├── ObjectChangedError             the object changed while it was being read
        ├── AccessDeniedError              (also PermissionError) credentials refused
        ├── InvalidPathError               (also ValueError) a key or path is not allowed
        ├── StorageClosedError             the storage was closed with aclose()
        ├── ConcurrentUseError             (also RuntimeError) two tasks used one file at once
        └── TransferError                  a request or part failed after every retry

Backend exceptions (botocore's ``ClientError``, aiohttp's connection errors,
``OSError``) are translated in one place per backend and re-raised ``from``
the original, so the cause stays available as ``__cause__``. Messages never
contain credentials.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ConcurrentUseError",
    "FileNotFoundInStorageError",
    "InvalidPathError",
    "ObjectChangedError",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "StorageClosedError",
    "StorageError",
    "TransferError",
]


class StorageError(Exception):
    """Root of every error aiokeg raises on purpose.

    Attributes:
        bucket: the bucket (or storage root) involved, when known.
        key: the object key involved, when known.
        operation: what was being attempted (``"PutObject"``, ``"open"``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        bucket: str | None = None,
        key: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.bucket = bucket
        self.key = key
        self.operation = operation

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only attributes survive pickling (multiprocessing, logging handlers).
        return (
            _rebuild,
            (type(self), self.message, self.bucket, self.key, self.operation, self.__dict__),
        )


def _rebuild(
    cls: type[StorageError],
    message: str,
    bucket: str | None,
    key: str | None,
    operation: str | None,
    state: dict[str, object],
) -> StorageError:
    err = cls.__new__(cls)
    StorageError.__init__(err, message, bucket=bucket, key=key, operation=operation)
    err.__dict__.update(state)
    return err


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """The key does not exist (``open(..., "rb")``, ``stat``, ``copy``, ``get`` ...)."""


#: keg-storage's name for :class:`ObjectNotFoundError`, kept so that
#: ``except FileNotFoundInStorageError`` in migrated code still works.
FileNotFoundInStorageError = ObjectNotFoundError


class ObjectExistsError(StorageError, FileExistsError):
    """Mode ``"xb"`` was asked to create a key that already exists.

    The existing object is left untouched and no upload is left behind.
    """


class ObjectChangedError(StorageError):
    """The object was replaced or deleted while a reader was reading it.

    Readers pin every request to the version seen at open (its ETag); rather
    than return bytes from two versions they raise this. Open the key again
    to read the new version.
    """


class AccessDeniedError(StorageError, PermissionError):
    """The server refused the request (HTTP 403): check credentials and policy."""


class InvalidPathError(StorageError, ValueError):
    """A key or local path is not allowed (empty, too long, escapes the root...).

    Raised before any request is sent or any file is touched.
    """


class StorageClosedError(StorageError, RuntimeError):
    """The storage was used after ``aclose()``; create a new one."""


class ConcurrentUseError(StorageError, RuntimeError):
    """Two tasks used one reader or writer at the same time.

    A file object serves one task at a time (as an ``aiofiles`` file or a
    socket does): interleaved ``write()`` calls would scramble the parts.
    Give each task its own file, or serialise the calls with a lock.
    """


class TransferError(StorageError):
    """A request, part or file failed after every allowed attempt.

    Attributes:
        attempts: how many attempts were made.
        part_number: the multipart part that failed, if any.
        failures: for bulk operations, each failed key and its error.
    """

    def __init__(
        self,
        message: str,
        *,
        bucket: str | None = None,
        key: str | None = None,
        operation: str | None = None,
        attempts: int | None = None,
        part_number: int | None = None,
        failures: dict[str, BaseException] | None = None,
    ) -> None:
        super().__init__(message, bucket=bucket, key=key, operation=operation)
        self.attempts = attempts
        self.part_number = part_number
        self.failures: dict[str, BaseException] = dict(failures or {})
