"""Part sizing: S3's limits hold and a stream of unknown length can reach 5 TiB."""

from __future__ import annotations

import pytest

from aiokeg.s3 import PartSizer
from aiokeg.s3._parts import MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE

MiB = 1024 * 1024


@pytest.mark.parametrize("chunk", [5 * MiB, 8 * MiB, 16 * MiB, 100 * MiB, 5 * 1024 * MiB])
def test_unknown_length_stream_can_reach_5_tib(chunk: int) -> None:
    sizer = PartSizer(chunk)
    sizes = [sizer.size(n) for n in range(1, MAX_PARTS + 1)]
    assert sum(sizes) >= MAX_OBJECT_SIZE
    assert all(MIN_PART_SIZE <= s <= MAX_PART_SIZE for s in sizes)
    assert sizes == sorted(sizes), "part sizes never shrink"
    assert sizer.capacity() == MAX_OBJECT_SIZE


def test_parts_keep_chunk_size_for_the_first_900_parts() -> None:
    sizer = PartSizer(8 * MiB)
    assert {sizer.size(n) for n in range(1, 901)} == {8 * MiB}
    assert sizer.size(901) == 16 * MiB


def test_size_hint_sets_one_part_size_that_fits_the_hint() -> None:
    hint = 200 * 1024**3  # 200 GiB needs parts of at least 20.48 MiB
    sizer = PartSizer(8 * MiB, hint)
    parts_needed = -(-hint // sizer.base)
    assert parts_needed <= MAX_PARTS
    assert {sizer.size(n) for n in range(1, parts_needed + 1)} == {sizer.base}
    assert sizer.base % MiB == 0


def test_size_hint_of_5_tib_fits_in_10000_parts() -> None:
    sizer = PartSizer(5 * MiB, MAX_OBJECT_SIZE)
    assert sizer.base * MAX_PARTS >= MAX_OBJECT_SIZE
    assert sizer.base <= MAX_PART_SIZE


def test_small_hint_keeps_the_chunk_size() -> None:
    assert PartSizer(8 * MiB, 10 * MiB).size(1) == 8 * MiB
