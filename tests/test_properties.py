"""Property-based tests (hypothesis) on every backend: random writes, seeks and reads
compared with an in-memory model (``io.BytesIO``)."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiokeg import AsyncLocalStorage, AsyncMemoryStorage, AsyncStorage
from conftest import MiB

CHUNK = 5 * MiB
_keys = itertools.count()

write_sizes = st.lists(
    st.one_of(st.integers(0, 4096), st.integers(4096, 3 * MiB)), min_size=0, max_size=6
)
read_ops = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(-1, 2 * MiB)),
        st.tuples(st.just("readinto"), st.integers(0, MiB)),
        st.tuples(st.just("seek"), st.integers(0, 14 * MiB), st.sampled_from([0, 1, 2])),
    ),
    max_size=12,
)


@pytest.fixture(params=["memory", "local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncStorage:
    if request.param == "memory":
        return AsyncMemoryStorage(chunk_size=CHUNK)
    if request.param == "local":
        return AsyncLocalStorage(tmp_path, chunk_size=CHUNK)
    make_s3: Callable[..., AsyncStorage] = request.getfixturevalue("make_s3")
    return make_s3(chunk_size=CHUNK)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sizes=write_sizes, ops=read_ops, seed=st.integers(0, 2**16))
async def test_random_writes_and_reads_match_a_model(
    backend: AsyncStorage, sizes: list[int], ops: list[Any], seed: int
) -> None:
    key = f"prop/{next(_keys)}"
    rng_bytes = os.urandom(max(sizes, default=0))
    model = io.BytesIO()
    async with backend.open(key, "wb") as f:
        for size in sizes:
            piece = rng_bytes[:size]
            assert await f.write(piece) == size
            model.write(piece)
    expected = model.getvalue()
    assert (await backend.stat(key)).size == len(expected)
    model.seek(0)
    async with backend.open(key, "rb") as r:
        for op in ops:
            if op[0] == "read":
                assert await r.read(op[1]) == model.read(op[1])
            elif op[0] == "readinto":
                mine, theirs = bytearray(op[1]), bytearray(op[1])
                assert await r.readinto(mine) == model.readinto(theirs)
                assert mine == theirs
            else:
                offset = op[1] if op[2] == 0 else op[1] - len(expected) // 2
                target = {0: offset, 1: model.tell() + offset, 2: len(expected) + offset}[op[2]]
                if target < 0:
                    continue
                assert await r.seek(offset, op[2]) == model.seek(offset, op[2])
            assert await r.tell() == model.tell()
    await backend.delete(key)
