"""The S3 backend: :class:`AsyncS3Storage` and its reader and writer."""

from ._parts import PartSizer
from ._reader import AsyncS3Reader
from ._retry import RetryPolicy
from ._storage import AsyncS3Storage, IncompleteUpload
from ._writer import AsyncS3Writer

__all__ = [
    "AsyncS3Reader",
    "AsyncS3Storage",
    "AsyncS3Writer",
    "IncompleteUpload",
    "PartSizer",
    "RetryPolicy",
]
