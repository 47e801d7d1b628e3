"""One contract, every backend: memory, local files and S3 (moto's server over HTTP).

A new backend gets the whole suite by adding one branch to the ``storage``
fixture. Everything here is behaviour that must not depend on the backend.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from aiokeg import (
    AsyncLocalStorage,
    AsyncMemoryStorage,
    AsyncStorage,
    InvalidPathError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageClosedError,
    TransferError,
)
from conftest import MiB, payload

CHUNK = 5 * MiB
BACKENDS = ["memory", "local", "s3"]


@pytest.fixture(params=BACKENDS)
def new_storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncStorage:
    """An unopened storage of each kind (constructors do no I/O)."""
    kind = request.param
    if kind == "memory":
        return AsyncMemoryStorage(chunk_size=CHUNK)
    if kind == "local":
        root = tmp_path / "root"
        root.mkdir()
        return AsyncLocalStorage(root, chunk_size=CHUNK)
    make_s3: Callable[..., AsyncStorage] = request.getfixturevalue("make_s3")
    return make_s3(chunk_size=CHUNK)


@pytest.fixture
async def storage(new_storage: AsyncStorage) -> AsyncIterator[AsyncStorage]:
    async with new_storage:
        yield new_storage


async def write(storage: AsyncStorage, key: str, data: bytes, mode: str = "wb") -> None:
    async with storage.open(key, mode) as f:  # type: ignore[call-overload]
        await f.write(data)


async def read(storage: AsyncStorage, key: str) -> bytes:
    async with storage.open(key, "rb") as f:
        return await f.read()


# -- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3],
    ids=["0", "1", "chunk-1", "chunk", "chunk+1", "2chunk+3"],
)
async def test_round_trip(storage: AsyncStorage, size: int) -> None:
    data = payload(size, seed=size)
    await write(storage, "dir/obj.bin", data)
    assert await read(storage, "dir/obj.bin") == data
    info = await storage.stat("dir/obj.bin")
    assert info.size == size
    assert info.name == "dir/obj.bin"


async def test_many_small_writes_make_one_object(storage: AsyncStorage) -> None:
    data = payload(CHUNK + 12345)
    async with storage.open("pieces", "wb") as f:
        for i in range(0, len(data), 7777):
            await f.write(data[i : i + 7777])
    assert await read(storage, "pieces") == data


async def test_overwrite_replaces_the_object(storage: AsyncStorage) -> None:
    await write(storage, "k", b"first")
    await write(storage, "k", b"second")
    assert await read(storage, "k") == b"second"


# -- reader API ----------------------------------------------------------------------------


async def test_read_seek_tell_readinto(storage: AsyncStorage) -> None:
    data = payload(100_000)
    await write(storage, "f", data)
    async with storage.open("f", "rb") as f:
        assert f.size == len(data)
        assert await f.read(10) == data[:10]
        assert await f.tell() == 10
        await f.seek(-100, os.SEEK_END)
        assert await f.read() == data[-100:]
        assert await f.read(5) == b""
        await f.seek(50)
        await f.seek(25, os.SEEK_CUR)
        buf = bytearray(1000)
        assert await f.readinto(buf) == 1000
        assert bytes(buf) == data[75:1075]
        await f.seek(len(data) + 10)
        assert await f.read() == b""


async def test_iteration(storage: AsyncStorage) -> None:
    data = payload(300_000)
    await write(storage, "it", data)
    async with storage.open("it", "rb") as f:
        chunks = [c async for c in f.iter_chunks(100_000)]
    assert [len(c) for c in chunks] == [100_000] * 3
    async with storage.open("it", "rb") as f:
        assert b"".join([c async for c in f]) == data


async def test_reader_after_close_refuses_reads(storage: AsyncStorage) -> None:
    await write(storage, "c", b"abc")
    f = await storage.open("c", "rb")
    await f.close()
    await f.close()
    with pytest.raises(ValueError, match="closed"):
        await f.read()


# -- nothing partial, ever ------------------------------------------------------------------


async def test_write_is_invisible_until_close(storage: AsyncStorage) -> None:
    f = await storage.open("pending", "wb")
    await f.write(payload(CHUNK + 10))
    assert not await storage.exists("pending")
    assert [e.name for e in await storage.list()] == []
    await f.close()
    assert await storage.exists("pending")


async def test_exception_inside_async_with_leaves_nothing(storage: AsyncStorage) -> None:
    with pytest.raises(KeyError):
        async with storage.open("boom", "wb") as f:
            await f.write(payload(CHUNK + 10))
            raise KeyError("boom")
    assert await storage.list() == []


async def test_exception_leaves_the_previous_version(storage: AsyncStorage) -> None:
    await write(storage, "v", b"version 1")
    with pytest.raises(KeyError):
        async with storage.open("v", "wb") as f:
            await f.write(b"version 2, half written")
            raise KeyError("boom")
    assert await read(storage, "v") == b"version 1"


async def test_cancellation_inside_async_with_leaves_nothing(storage: AsyncStorage) -> None:
    entered = asyncio.Event()

    async def writer() -> None:
        async with storage.open("cancel", "wb") as f:
            await f.write(payload(CHUNK + 10))
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(writer())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await storage.list() == []


async def test_abort_leaves_nothing(storage: AsyncStorage) -> None:
    f = await storage.open("ab", "wb")
    await f.write(payload(CHUNK + 10))
    await f.abort()
    await f.close()  # closing an aborted writer does nothing
    assert await storage.list() == []
    with pytest.raises(ValueError):
        await f.write(b"x")


async def test_writing_nothing_creates_an_empty_object(storage: AsyncStorage) -> None:
    async with storage.open("empty", "wb"):
        pass
    assert await read(storage, "empty") == b""
    assert (await storage.stat("empty")).size == 0


# -- exclusive create --------------------------------------------------------------------------


async def test_exclusive_create(storage: AsyncStorage) -> None:
    await write(storage, "x", b"first", "xb")
    with pytest.raises(ObjectExistsError) as info:
        await write(storage, "x", b"second", "xb")
    assert isinstance(info.value, FileExistsError)
    assert await read(storage, "x") == b"first"
    assert [e.name for e in await storage.list()] == ["x"]


async def test_exclusive_create_losing_a_race_leaves_the_winner(storage: AsyncStorage) -> None:
    f = await storage.open("race", "xb")
    await f.write(b"loser")
    await write(storage, "race", b"winner")
    with pytest.raises(ObjectExistsError):
        await f.close()
    assert await read(storage, "race") == b"winner"


# -- listing ---------------------------------------------------------------------------------------


async def test_list_has_prefix_semantics_and_s3_order(storage: AsyncStorage) -> None:
    # '-' sorts before '/', which sorts before '0' and letters: a backend that
    # walks folders must still give S3's byte order.
    keys = ["a/b/c", "a-c", "a0", "a/ba", "ab/x", "b", "a/b-d"]
    for key in keys:
        await write(storage, key, key.encode())
    present = sorted(keys)
    assert [e.name for e in await storage.list()] == present
    assert [e.name for e in await storage.list("a/")] == ["a/b-d", "a/b/c", "a/ba"]
    assert [e.name for e in await storage.list("a/b")] == ["a/b-d", "a/b/c", "a/ba"]
    assert [e.name for e in await storage.list("a/b/")] == ["a/b/c"]
    assert [e.name for e in await storage.list("nothing")] == []
    entry = next(e for e in await storage.list() if e.name == "a-c")
    assert entry.size == 3
    assert entry.last_modified.tzinfo is not None
    assert [e.name async for e in storage.iter_list("a")] == [
        k for k in present if k.startswith("a")
    ]


# -- other operations ----------------------------------------------------------------------------


async def test_delete_and_delete_many(storage: AsyncStorage) -> None:
    for key in ("d/1", "d/2", "d/3", "keep"):
        await write(storage, key, b"x")
    await storage.delete("d/1")
    await storage.delete("d/missing")
    await storage.delete_many(["d/2", "d/3", "d/absent"])
    assert [e.name for e in await storage.list()] == ["keep"]


async def test_copy_stat_exists(storage: AsyncStorage) -> None:
    data = payload(CHUNK + 1)
    await write(storage, "src", data)
    await storage.copy("src", "sub/dst")
    assert await read(storage, "sub/dst") == data
    assert await read(storage, "src") == data
    assert await storage.exists("sub/dst")
    assert not await storage.exists("sub")
    info = await storage.stat("sub/dst")
    assert info.size == len(data)
    assert info.etag
    assert info.last_modified.tzinfo is not None


async def test_missing_keys_raise_object_not_found(storage: AsyncStorage, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError):
        await storage.open("missing", "rb")
    with pytest.raises(ObjectNotFoundError):
        await storage.stat("missing")
    with pytest.raises(ObjectNotFoundError):
        await storage.copy("missing", "elsewhere")
    with pytest.raises(FileNotFoundError):
        await storage.get("missing", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["", "x" * 1025, "a\x00b"], ids=["empty", "too-long", "nul"])
async def test_bad_keys_get_the_same_error_everywhere(storage: AsyncStorage, key: str) -> None:
    with pytest.raises(InvalidPathError):
        storage.open(key, "wb")
    with pytest.raises(InvalidPathError):
        await storage.stat(key)
    with pytest.raises(InvalidPathError):
        await storage.delete(key)
    assert await storage.list() == []


async def test_progress_callbacks_and_file_objects(storage: AsyncStorage) -> None:
    data = payload(2 * CHUNK + 99)
    up: list[int] = []
    down: list[int] = []

    async def on_down(done: int) -> None:
        down.append(done)

    assert await storage.upload(io.BytesIO(data), "p", progress_callback=up.append) == len(data)
    out = io.BytesIO()
    assert await storage.download("p", out, progress_callback=on_down) == len(data)
    assert out.getvalue() == data
    for calls in (up, down):
        assert calls == sorted(calls)
        assert calls[-1] == len(data)


async def test_get_and_put_local_files(storage: AsyncStorage, tmp_path: Path) -> None:
    data = payload(CHUNK + 5)
    (tmp_path / "in.bin").write_bytes(data)
    await storage.put(tmp_path / "in.bin", "remote/in.bin")
    await storage.get("remote/in.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data


async def test_closed_storage_refuses_work(storage: AsyncStorage) -> None:
    await storage.aclose()
    await storage.aclose()
    with pytest.raises(StorageClosedError):
        await storage.list()
    with pytest.raises(StorageClosedError):
        storage.open("k", "wb")


async def test_delete_many_reports_nothing_for_a_clean_run(storage: AsyncStorage) -> None:
    await write(storage, "one", b"1")
    try:
        await storage.delete_many(["one"])
    except TransferError:  # pragma: no cover - would be the failure
        pytest.fail("delete_many reported a failure")
    assert await storage.list() == []
