"""Multipart sizing: S3's part limits, and part sizes that let a stream reach 5 TiB."""

from __future__ import annotations

import math

__all__ = ["MAX_OBJECT_SIZE", "MAX_PARTS", "MAX_PART_SIZE", "MIN_PART_SIZE", "PartSizer"]

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB  # 5 TiB

#: Parts per size step: sizes double every GROWTH_STEP parts.
GROWTH_STEP = 900


class PartSizer:
    """Chooses the size of each part of one upload.

    Without a size hint, parts 1..900 have ``chunk_size`` bytes and the size
    doubles every 900 parts after that (capped at 5 GiB), so 10,000 parts
    hold more than S3's 5 TiB object limit for any ``chunk_size`` ≥ 5 MiB
    while objects up to ``900 × chunk_size`` (7 GiB at 8 MiB) keep the
    memory formula ``(max_concurrency + 1) × chunk_size``.

    With ``size_hint``, the part size is chosen up front so that the hinted
    size fits in 10,000 equal parts, and it never grows before the hinted
    size is reached.
    """

    def __init__(self, chunk_size: int, size_hint: int | None = None) -> None:
        base = max(chunk_size, MIN_PART_SIZE)
        self.grow_after = GROWTH_STEP
        if size_hint:
            needed = math.ceil(size_hint / MAX_PARTS)
            base = max(base, math.ceil(needed / MiB) * MiB)
            self.grow_after = max(GROWTH_STEP, math.ceil(size_hint / base))
        self.base = min(base, MAX_PART_SIZE)

    def size(self, part_number: int) -> int:
        """Bytes in part ``part_number`` (1-based)."""
        if part_number <= self.grow_after:
            return self.base
        level = (part_number - 1 - self.grow_after) // GROWTH_STEP + 1
        return min(MAX_PART_SIZE, self.base << level)

    def capacity(self) -> int:
        """The largest object 10,000 parts of this schedule can hold (capped at 5 TiB)."""
        return min(MAX_OBJECT_SIZE, sum(self.size(n) for n in range(1, MAX_PARTS + 1)))
