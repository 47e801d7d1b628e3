"""The public namespace is curated: adding or dropping a name must be deliberate."""

from __future__ import annotations

import inspect

import aiokeg

EXPECTED = [
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


def test_all_is_sorted_and_pinned() -> None:
    assert aiokeg.__all__ == sorted(aiokeg.__all__)
    assert aiokeg.__all__ == EXPECTED


def test_every_public_name_is_documented_and_comes_from_a_private_module() -> None:
    for name in aiokeg.__all__:
        obj = getattr(aiokeg, name)
        if name in ("__version__", "ProgressCallback"):
            continue
        assert inspect.getdoc(obj), f"{name} has no docstring"
        module = getattr(obj, "__module__", "")
        assert any(part.startswith("_") for part in module.split(".")[1:]), (name, module)


def test_every_public_method_is_documented() -> None:
    for name in aiokeg.__all__:
        obj = getattr(aiokeg, name)
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not callable(member):
                continue
            assert inspect.getdoc(member), f"{name}.{attr} has no docstring"


def test_error_tree() -> None:
    assert issubclass(aiokeg.ObjectNotFoundError, aiokeg.StorageError)
    assert issubclass(aiokeg.ObjectNotFoundError, FileNotFoundError)
    assert aiokeg.FileNotFoundInStorageError is aiokeg.ObjectNotFoundError
    assert issubclass(aiokeg.ObjectExistsError, FileExistsError)
    assert issubclass(aiokeg.InvalidPathError, ValueError)
    assert issubclass(aiokeg.AccessDeniedError, PermissionError)
    for name in ("ObjectChangedError", "TransferError", "StorageClosedError"):
        assert issubclass(getattr(aiokeg, name), aiokeg.StorageError)


def test_errors_pickle_with_their_attributes() -> None:
    import pickle

    err = aiokeg.TransferError("m", bucket="b", key="k", operation="op", part_number=3)
    back = pickle.loads(pickle.dumps(err))
    assert (back.bucket, back.key, back.part_number, str(back)) == ("b", "k", 3, "m")
