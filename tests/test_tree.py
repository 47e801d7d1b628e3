"""The path rule of bulk operations, on every backend: a prefix names a folder.

``backup`` and ``backup/`` both mean the keys under ``backup/``; siblings
(``backup2/``, ``backupX``, ``backup.txt``) survive every bulk operation.
"""

from __future__ import annotations

import pytest

from aiokeg import AsyncStorage
from aiokeg.transfer import copy_tree, delete_tree, folder, sync
from test_contract import new_storage, read, storage, write

__all__ = ["new_storage", "storage"]  # fixtures, shared with the contract suite

SIBLINGS = {"backup2/keep": b"2", "backupX": b"X", "backup.txt": b"t", "backu": b"u"}


async def seed(storage: AsyncStorage, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        await write(storage, key, data)


async def keys(storage: AsyncStorage) -> list[str]:
    return [e.name for e in await storage.list()]


def test_folder_normalises_a_prefix() -> None:
    assert folder("backup") == "backup/"
    assert folder("backup/") == "backup/"
    assert folder("backup//") == "backup/"
    assert folder("a/b") == "a/b/"
    assert folder("") == ""
    assert folder("/") == ""


@pytest.mark.parametrize("dst_prefix", ["backup", "backup/"])
async def test_sync_delete_touches_nothing_outside_the_destination_folder(
    storage: AsyncStorage, dst_prefix: str
) -> None:
    await seed(storage, {**SIBLINGS, "backup/old": b"old", "data/a": b"A", "data/b": b"B"})
    await seed(storage, {"data2/not-source": b"n", "dataX": b"n"})
    report = await sync(storage, storage, src_prefix="data", dst_prefix=dst_prefix, delete=True)
    assert report.deleted == ["backup/old"]
    assert sorted(r.dest for r in report.copied) == ["backup/a", "backup/b"]
    assert await read(storage, "backup/a") == b"A"
    for key, data in SIBLINGS.items():
        assert await read(storage, key) == data, f"{key} was touched"
    assert "backupa" not in await keys(storage)


async def test_sync_dry_run_changes_nothing(storage: AsyncStorage) -> None:
    await seed(storage, {"src/new": b"n", "dst/old": b"o"})
    before = await keys(storage)
    report = await sync(
        storage, storage, src_prefix="src", dst_prefix="dst", delete=True, dry_run=True
    )
    assert report.deleted == ["dst/old"]
    assert [r.dest for r in report.results] == ["dst/new"]
    assert await keys(storage) == before


@pytest.mark.parametrize("src_prefix", ["backup", "backup/"])
async def test_copy_tree_copies_only_the_folder_and_joins_with_one_slash(
    storage: AsyncStorage, src_prefix: str
) -> None:
    await seed(storage, {**SIBLINGS, "backup/f1": b"1", "backup/sub/f2": b"2"})
    report = await copy_tree(storage, storage, src_prefix=src_prefix, dst_prefix="dl")
    assert not report.failures
    assert sorted(r.dest for r in report.results) == ["dl/f1", "dl/sub/f2"]
    assert await read(storage, "dl/sub/f2") == b"2"


@pytest.mark.parametrize("prefix", ["backup", "backup/"])
async def test_delete_tree_deletes_only_the_folder(storage: AsyncStorage, prefix: str) -> None:
    await seed(storage, {**SIBLINGS, "backup/a": b"a", "backup/b/c": b"c"})
    deleted = await delete_tree(storage, prefix)
    assert sorted(deleted) == ["backup/a", "backup/b/c"]
    assert await keys(storage) == sorted(SIBLINGS)


async def test_delete_tree_dry_run_and_empty_prefix(storage: AsyncStorage) -> None:
    await seed(storage, {"backup/a": b"a"})
    assert await delete_tree(storage, "backup", dry_run=True) == ["backup/a"]
    assert await keys(storage) == ["backup/a"]
    with pytest.raises(ValueError, match="every object"):
        await delete_tree(storage, "")


async def test_list_keeps_plain_prefix_semantics(storage: AsyncStorage) -> None:
    await seed(storage, {**SIBLINGS, "backup/a": b"a"})
    assert [e.name for e in await storage.list("backup")] == [
        "backup.txt",
        "backup/a",
        "backup2/keep",
        "backupX",
    ]
