"""Value types shared by every backend: modes, link operations, listing entries."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import NamedTuple

__all__ = ["FileMode", "ListEntry", "ObjectInfo", "ProgressCallback", "ShareLinkOperation"]

#: Called with the number of bytes transferred so far; may be a coroutine function.
ProgressCallback = Callable[[int], Awaitable[None] | None]


class FileMode(enum.Flag):
    """How a file is opened, as in keg-storage, plus exclusive creation.

    ``FileMode.as_mode("rb")`` gives ``FileMode.read``; ``"wb"`` gives
    ``FileMode.write``; ``"xb"`` gives ``FileMode.write | FileMode.exclusive``.
    """

    read = enum.auto()
    write = enum.auto()
    exclusive = enum.auto()

    def __str__(self) -> str:
        if self & FileMode.exclusive:
            return "xb"
        return ("r" if self & FileMode.read else "") + ("w" if self & FileMode.write else "") + "b"

    @classmethod
    def as_mode(cls, obj: str | FileMode) -> FileMode:
        """Turn ``"rb"``/``"wb"``/``"xb"`` (or a ``FileMode``) into a ``FileMode``.

        Raises:
            ValueError: for any other mode, with what is supported instead.
        """
        if isinstance(obj, cls):
            mode = obj
        elif isinstance(obj, str):
            mode = _parse_mode(obj)
        else:
            raise ValueError(
                f"mode must be a str such as 'rb', 'wb' or 'xb', or a FileMode; got {obj!r}"
            )
        if mode not in _SUPPORTED_MODES:
            raise ValueError(
                f"unsupported mode {obj!r}: open for reading ('rb') or for writing "
                "('wb', or 'xb' to create only if absent), not both"
            )
        return mode


_SUPPORTED_MODES = (FileMode.read, FileMode.write, FileMode.write | FileMode.exclusive)


def _parse_mode(text: str) -> FileMode:
    letters = set(text)
    if len(letters) != len(text) or not text:
        raise ValueError(f"invalid mode {text!r}: use 'rb', 'wb' or 'xb'")
    if "t" in letters:
        raise ValueError(
            f"text mode {text!r} is not supported: open in binary mode ('rb'/'wb') "
            "and encode or decode yourself"
        )
    if "a" in letters or "+" in letters:
        raise ValueError(
            f"mode {text!r} is not supported: objects cannot be appended to or updated "
            "in place; read with 'rb' and write a new object with 'wb'"
        )
    unknown = letters - {"r", "w", "x", "b"}
    if unknown:
        raise ValueError(f"invalid mode {text!r}: unknown letter(s) {''.join(sorted(unknown))!r}")
    mode = FileMode(0)
    if "r" in letters:
        mode |= FileMode.read
    if "w" in letters:
        mode |= FileMode.write
    if "x" in letters:
        mode |= FileMode.write | FileMode.exclusive
    return mode


class ShareLinkOperation(enum.Flag):
    """What a shared link allows, as in keg-storage: one operation per link.

    Accepts the full names (``"download"``, ``"upload"``, ``"remove"``) or
    keg-storage's letters (``"d"``, ``"u"``, ``"r"``).
    """

    download = enum.auto()
    upload = enum.auto()
    remove = enum.auto()

    def __str__(self) -> str:
        return "".join(
            letter
            for letter, op in (("d", self.download), ("u", self.upload), ("r", self.remove))
            if self & op
        )

    @classmethod
    def as_operation(cls, obj: str | ShareLinkOperation) -> ShareLinkOperation:
        """Parse a single operation; combinations are refused.

        Raises:
            ValueError: for unknown names or for more than one operation.
        """
        if isinstance(obj, cls):
            op = obj
        elif isinstance(obj, str):
            if obj in cls.__members__:
                op = cls[obj]
            elif obj and set(obj) <= {"d", "u", "r"} and len(set(obj)) == len(obj):
                op = cls(0)
                for letter, member in (("d", cls.download), ("u", cls.upload), ("r", cls.remove)):
                    if letter in obj:
                        op |= member
            else:
                raise ValueError(
                    f"unknown link operation {obj!r}: use 'download', 'upload' or 'remove' "
                    "(or keg-storage's 'd', 'u', 'r')"
                )
        else:
            raise ValueError(f"operation must be a ShareLinkOperation or str, got {obj!r}")
        if op not in (cls.download, cls.upload, cls.remove):
            raise ValueError(
                f"a link allows exactly one operation, got {str(op) or 'none'!r}: "
                "create one link per operation"
            )
        return op


class ListEntry(NamedTuple):
    """One object in a listing (keg-storage's fields; ``last_modified`` is aware).

    ``etag`` is the version tag the listing gave (as ``stat().etag``), or
    None where the backend's listing has none. It comes last and has a
    default, so keg-storage's three-field construction still works.
    """

    name: str
    last_modified: datetime
    size: int
    etag: str | None = None


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """What :meth:`stat` returns about one object.

    Attributes:
        name: the key.
        size: size in bytes.
        last_modified: timezone-aware modification time.
        etag: the backend's version tag (S3's ETag without quotes).
        content_type: the stored content type, if the backend keeps one.
        metadata: user metadata (S3 ``x-amz-meta-*``), empty where unsupported.
    """

    name: str
    size: int
    last_modified: datetime
    etag: str
    content_type: str | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
