"""AsyncLocalStorage's own safety rules: atomic writes and never leaving the root."""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from pathlib import Path

import pytest

from aiokeg import AsyncLocalStorage, AsyncMemoryStorage, InvalidPathError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


async def test_write_goes_to_a_file_with_no_name_until_close(root: Path) -> None:
    """Linux: an O_TMPFILE file has no name, so nothing can be left behind."""
    storage = AsyncLocalStorage(root)
    f = await storage.open("dir/file.bin", "wb")
    await f.write(b"x" * (2 * 1024 * 1024))
    assert files_under(root) == []
    assert await storage.list() == []
    await f.close()
    assert files_under(root) == ["dir/file.bin"]


async def test_without_o_tmpfile_a_named_temporary_file_is_renamed_on_close(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aiokeg._localfs._TMPFILE", 0)
    storage = AsyncLocalStorage(root)
    f = await storage.open("dir/file.bin", "wb")
    await f.write(b"x" * (2 * 1024 * 1024))
    temp = files_under(root)
    assert len(temp) == 1
    assert temp[0].startswith("dir/.file.bin.aiokeg-")
    assert await storage.list() == []  # temporary files never show
    await f.close()
    assert files_under(root) == ["dir/file.bin"]


async def test_abort_and_exceptions_remove_the_temporary_file(root: Path) -> None:
    storage = AsyncLocalStorage(root)
    f = await storage.open("a", "wb")
    await f.write(b"data")
    await f.abort()
    with pytest.raises(RuntimeError):
        async with storage.open("b", "wb") as g:
            await g.write(b"data")
            raise RuntimeError
    assert files_under(root) == []


async def test_cancellation_removes_the_temporary_file(root: Path) -> None:
    storage = AsyncLocalStorage(root)
    started = asyncio.Event()

    async def writer() -> None:
        async with storage.open("c", "wb") as f:
            await f.write(b"data")
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(root) == []


async def test_garbage_collected_writer_warns_and_leaves_nothing(root: Path) -> None:
    storage = AsyncLocalStorage(root)
    f = await storage.open("leak", "wb")
    await f.write(b"data")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del f
        gc.collect()
    assert [w.category for w in caught] == [ResourceWarning]
    for _ in range(50):  # removal runs in a worker thread
        if not files_under(root):
            break
        await asyncio.sleep(0.02)
    assert files_under(root) == []


@pytest.mark.parametrize(
    "key",
    ["../escape", "a/../../escape", "/etc/passwd", "a//b", "./a", "a/./b", "dir/", "a\x00b", ""],
)
async def test_keys_that_leave_the_root_are_refused_before_touching_disk(
    root: Path, key: str
) -> None:
    storage = AsyncLocalStorage(root)
    with pytest.raises(InvalidPathError):
        storage.open(key, "wb") if not key or "\x00" in key else await storage.open(key, "wb")
    with pytest.raises(InvalidPathError):
        await storage.stat(key)
    assert list(root.parent.iterdir()) == [root]
    assert files_under(root) == []


async def test_symlinks_out_of_the_root_are_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (root / "link-dir").symlink_to(outside)
    (root / "link-file").symlink_to(outside / "secret")
    storage = AsyncLocalStorage(root)
    for key in ("link-dir/secret", "link-file", "link-dir/new"):
        with pytest.raises(InvalidPathError, match="outside"):
            await storage.open(key, "rb" if key != "link-dir/new" else "wb")
    with pytest.raises(InvalidPathError):
        await storage.copy("link-file", "copied")
    assert not (outside / "new").exists()
    assert await storage.list() == []  # listings skip symbolic links


async def test_symlinks_inside_the_root_are_followed(root: Path) -> None:
    (root / "real").mkdir()
    (root / "real" / "f").write_bytes(b"inside")
    (root / "alias").symlink_to(root / "real")
    storage = AsyncLocalStorage(root)
    async with storage.open("alias/f", "rb") as f:
        assert await f.read() == b"inside"


async def test_root_must_exist_and_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidPathError, match="does not exist"):
        await AsyncLocalStorage(tmp_path / "missing").list()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InvalidPathError, match="not a folder"):
        await AsyncLocalStorage(tmp_path / "file").stat("x")


async def test_exclusive_create_refuses_an_existing_file(root: Path) -> None:
    (root / "exists").write_bytes(b"old")
    storage = AsyncLocalStorage(root)
    with pytest.raises(FileExistsError):
        await storage.open("exists", "xb")
    assert (root / "exists").read_bytes() == b"old"


async def test_copy_does_not_read_through_python(root: Path) -> None:
    (root / "src").write_bytes(b"z" * 3_000_000)
    storage = AsyncLocalStorage(root)
    await storage.copy("src", "deep/dst")
    assert (root / "deep" / "dst").read_bytes() == b"z" * 3_000_000
    assert files_under(root) == ["deep/dst", "src"]


async def test_reader_keeps_the_version_it_opened(root: Path) -> None:
    storage = AsyncLocalStorage(root)
    async with storage.open("v", "wb") as w:
        await w.write(b"one" * 1000)
    async with storage.open("v", "rb") as f:
        async with storage.open("v", "wb") as w:
            await w.write(b"two" * 1000)
        assert await f.read() == b"one" * 1000


@pytest.mark.parametrize("storage_cls", [AsyncLocalStorage, AsyncMemoryStorage])
async def test_links_are_not_supported_and_say_why(root: Path, storage_cls: type) -> None:
    storage = AsyncLocalStorage(root) if storage_cls is AsyncLocalStorage else AsyncMemoryStorage()
    with pytest.raises(NotImplementedError, match="sign"):
        await storage.link_to("k", "download", 60)


def test_temporary_names_cannot_be_used_as_keys(root: Path) -> None:
    storage = AsyncLocalStorage(root)
    with pytest.raises(InvalidPathError, match="temporary"):
        storage._segments(".x.aiokeg-0123456789ab.tmp")
    assert os.listdir(root) == []
