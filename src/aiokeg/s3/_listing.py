"""ListObjectsV2 answers parsed straight from their XML (botocore's parser costs ~0.15 ms a key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree

__all__ = ["parse_list_objects_v2"]

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def parse_list_objects_v2(body: bytes) -> dict[str, Any]:
    """The fields aiokeg reads of a ``ListObjectsV2`` answer, in botocore's shape.

    Keys are decoded as botocore decodes them when the answer says
    ``EncodingType`` url (asked for, so that any key survives XML).
    """
    root = ElementTree.fromstring(body)
    ns = _NS if root.tag.startswith(_NS) else ""

    def text(node: ElementTree.Element, name: str) -> str | None:
        return node.findtext(ns + name)

    url_encoded = text(root, "EncodingType") == "url"

    def decode(value: str) -> str:
        return unquote_plus(value) if url_encoded else value

    contents = []
    for item in root.iter(ns + "Contents"):
        contents.append(
            {
                "Key": decode(text(item, "Key") or ""),
                "LastModified": _timestamp(text(item, "LastModified") or ""),
                "ETag": text(item, "ETag") or "",
                "Size": int(text(item, "Size") or 0),
            }
        )
    response: dict[str, Any] = {
        "IsTruncated": (text(root, "IsTruncated") or "false").lower() == "true",
        "KeyCount": int(text(root, "KeyCount") or len(contents)),
    }
    if contents:
        response["Contents"] = contents
    token = text(root, "NextContinuationToken")
    if token:
        response["NextContinuationToken"] = token
    return response


def _timestamp(value: str) -> datetime:
    # S3 writes 2026-12-01T11:40:25.000Z; fromisoformat takes "+00:00" on 3.10.
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
