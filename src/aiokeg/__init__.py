"""aiokeg: asyncio-native object storage with async file objects that never publish partial data.

Quick start::

    import asyncio
    from aiokeg import AsyncS3Storage

    async def main() -> None:
        async with AsyncS3Storage("my-bucket", "eu-west-1") as storage:
            async with storage.open("hello.txt", "wb") as f:
                await f.write(b"hello, world")
            async with storage.open("hello.txt", "rb") as f:
                print(await f.read())

    asyncio.run(main())
"""

from ._base import AsyncStorage
from ._errors import (
    AccessDeniedError,
    ConcurrentUseError,
    FileNotFoundInStorageError,
    InvalidPathError,
    ObjectChangedError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageClosedError,
    StorageError,
    TransferError,
)
from ._files import AsyncReader, AsyncWriter
from ._local import AsyncLocalStorage
from ._memory import AsyncMemoryStorage
from ._types import FileMode, ListEntry, ObjectInfo, ProgressCallback, ShareLinkOperation
from ._validate import TransferSettings
from .s3 import AsyncS3Reader, AsyncS3Storage, AsyncS3Writer

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "AsyncLocalStorage",
    "AsyncMemoryStorage",
    "AsyncReader",
    "AsyncS3Reader",
    "AsyncS3Storage",
    "AsyncS3Writer",
    "AsyncStorage",
    "AsyncWriter",
    "ConcurrentUseError",
    "FileMode",
    "FileNotFoundInStorageError",
    "InvalidPathError",
    "ListEntry",
    "ObjectChangedError",
    "ObjectExistsError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ProgressCallback",
    "ShareLinkOperation",
    "StorageClosedError",
    "StorageError",
    "TransferError",
    "TransferSettings",
    "__version__",
]
