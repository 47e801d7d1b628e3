"""The ``aiokeg`` command: ls, cp, sync, rm, stat, cat, link, abort-uploads, demo.

Locations are ``s3://bucket/key`` or local paths. Exit codes: 0 success,
1 some transfers failed, 2 usage error. Needs the ``cli`` extra
(``pip install "aiokeg[cli]"``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

import click

from ._base import AsyncStorage
from ._errors import StorageError
from ._local import AsyncLocalStorage
from .s3 import AsyncS3Storage

T = TypeVar("T")
MiB = 1024 * 1024


@dataclasses.dataclass
class Options:
    """Connection options shared by every command."""

    endpoint_url: str | None
    region: str | None
    profile: str | None
    access_key: str | None
    secret_key: str | None
    chunk_size: int
    concurrency: int
    debug: bool


@dataclasses.dataclass(frozen=True)
class Location:
    """A parsed location: a storage plus a key or prefix inside it."""

    storage: AsyncStorage
    key: str
    is_s3: bool


def parse_location(text: str, opts: Options, *, is_dir: bool = False) -> Location:
    """Turn ``s3://bucket/key`` or a local path into a storage and a key."""
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        if not bucket:
            raise click.UsageError(f"{text!r} names no bucket: use s3://bucket/key")
        storage: AsyncStorage = AsyncS3Storage(
            bucket,
            opts.region,
            opts.access_key,
            opts.secret_key,
            opts.profile,
            endpoint_url=opts.endpoint_url,
            chunk_size=opts.chunk_size,
            max_concurrency=opts.concurrency,
        )
        return Location(storage, key, True)
    path = os.path.abspath(text)
    if is_dir:
        return Location(AsyncLocalStorage(path, chunk_size=opts.chunk_size), "", False)
    folder, name = os.path.split(path)
    return Location(AsyncLocalStorage(folder, chunk_size=opts.chunk_size), name, False)


def run(opts: Options, coro: Coroutine[Any, Any, T]) -> T:
    """Run a command; turn aiokeg errors into one readable line and exit code 1."""
    try:
        return asyncio.run(coro)
    except (StorageError, OSError, ValueError) as exc:
        if opts.debug:
            raise
        click.echo(f"aiokeg: error: {exc}", err=True)
        sys.exit(1)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "AIOKEG"}
)
@click.option("--endpoint-url", envvar="AIOKEG_ENDPOINT_URL", help="S3-compatible server URL.")
@click.option("--region", envvar="AWS_REGION", help="AWS region.")
@click.option("--profile", envvar="AWS_PROFILE", help="Profile in ~/.aws/config.")
@click.option("--access-key", envvar="AWS_ACCESS_KEY_ID", help="Access key id.")
@click.option("--secret-key", envvar="AWS_SECRET_ACCESS_KEY", help="Secret access key.")
@click.option("--chunk-size", default=8, show_default=True, help="Part / range size in MiB.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight per file.")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def main(ctx: click.Context, /, **kwargs: Any) -> None:
    """Asyncio-native object storage from the command line."""
    kwargs["chunk_size"] = int(kwargs["chunk_size"]) * MiB
    ctx.obj = Options(
        endpoint_url=kwargs["endpoint_url"],
        region=kwargs["region"],
        profile=kwargs["profile"],
        access_key=kwargs["access_key"],
        secret_key=kwargs["secret_key"],
        chunk_size=kwargs["chunk_size"],
        concurrency=kwargs["concurrency"],
        debug=kwargs["debug"],
    )


@main.command("ls")
@click.argument("location")
@click.option("-l", "--long", "long_format", is_flag=True, help="Show size and date.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def ls_command(opts: Options, location: str, long_format: bool, as_json: bool) -> None:
    """List objects under a prefix."""
    loc = parse_location(location, opts, is_dir=not location.startswith("s3://"))

    async def go() -> list[Any]:
        async with loc.storage:
            return await loc.storage.list(loc.key)

    for entry in run(opts, go()):
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "name": entry.name,
                        "size": entry.size,
                        "last_modified": entry.last_modified.isoformat(),
                    }
                )
            )
        elif long_format:
            click.echo(f"{entry.last_modified:%Y-%m-%d %H:%M:%S}  {entry.size:>14}  {entry.name}")
        else:
            click.echo(entry.name)


@main.command("stat")
@click.argument("location")
@click.pass_obj
def stat_command(opts: Options, location: str) -> None:
    """Describe one object."""
    loc = parse_location(location, opts)

    async def go() -> Any:
        async with loc.storage:
            return await loc.storage.stat(loc.key)

    info = run(opts, go())
    click.echo(
        json.dumps(
            {
                "name": info.name,
                "size": info.size,
                "etag": info.etag,
                "content_type": info.content_type,
                "last_modified": info.last_modified.isoformat(),
                "metadata": dict(info.metadata),
            },
            indent=2,
        )
    )


@main.command("cat")
@click.argument("location")
@click.pass_obj
def cat_command(opts: Options, location: str) -> None:
    """Write an object to standard output."""
    loc = parse_location(location, opts)

    async def go() -> None:
        out = sys.stdout.buffer
        async with loc.storage, loc.storage.open(loc.key, "rb") as f:
            async for chunk in f:
                await asyncio.to_thread(out.write, chunk)
        await asyncio.to_thread(out.flush)

    run(opts, go())


@main.command("rm")
@click.argument("location")
@click.option("-r", "--recursive", is_flag=True, help="Delete every key under the prefix.")
@click.option("--force", is_flag=True, help="Allow deleting a whole bucket's contents.")
@click.pass_obj
def rm_command(opts: Options, location: str, recursive: bool, force: bool) -> None:
    """Delete an object (or, with -r, every object under a prefix)."""
    loc = parse_location(location, opts, is_dir=recursive and not location.startswith("s3://"))
    if recursive and not loc.key and not force:
        raise click.UsageError("refusing to delete everything in the bucket: add --force")

    async def go() -> int:
        async with loc.storage:
            if not recursive:
                await loc.storage.delete(loc.key)
                return 1
            keys = [e.name async for e in loc.storage.iter_list(loc.key)]
            await loc.storage.delete_many(keys)
            return len(keys)

    count = run(opts, go())
    click.echo(f"deleted {count} object(s)", err=True)


@main.command("link")
@click.argument("location")
@click.option(
    "--operation", type=click.Choice(["download", "upload", "remove"]), default="download"
)
@click.option(
    "--expires", default=3600, show_default=True, help="Seconds the link lasts (max 7 days)."
)
@click.pass_obj
def link_command(opts: Options, location: str, operation: str, expires: int) -> None:
    """Print a presigned URL for one operation."""
    loc = parse_location(location, opts)

    async def go() -> str:
        async with loc.storage:
            return await loc.storage.link_to(loc.key, operation, timedelta(seconds=expires))

    click.echo(run(opts, go()))


def _progress_handler(quiet: bool) -> tuple[Any, Any]:
    if quiet or not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=False,
    )
    task = progress.add_task("transfer", total=None)

    def update(event: Any) -> None:
        progress.update(
            task,
            completed=event.bytes_done,
            total=event.bytes_total,
            description=f"{event.files_done}/{event.files_total} files",
        )

    return progress, update


@main.command("cp")
@click.argument("source")
@click.argument("dest")
@click.option("-r", "--recursive", is_flag=True, help="Copy every object under the prefix.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def cp_command(opts: Options, source: str, dest: str, recursive: bool, quiet: bool) -> None:
    """Copy a file or (with -r) a tree, in either direction or S3 to S3."""
    from .transfer import copy_many

    src = parse_location(source, opts, is_dir=recursive and not source.startswith("s3://"))
    dst = parse_location(dest, opts, is_dir=recursive and not dest.startswith("s3://"))
    progress, update = _progress_handler(quiet)

    async def go() -> Any:
        async with src.storage, dst.storage:
            if recursive:
                pairs = [
                    (
                        e.name,
                        dst.key + e.name[len(src.key) :].lstrip("/")
                        if dst.key
                        else e.name[len(src.key) :].lstrip("/"),
                        e.size,
                    )
                    async for e in src.storage.iter_list(src.key)
                ]
            else:
                pairs = [(src.key, dst.key or os.path.basename(src.key), 0)]
            return await copy_many(
                src.storage, dst.storage, pairs, chunk_size=opts.chunk_size, on_progress=update
            )

    report = _with_progress(progress, lambda: run(opts, go()))
    _finish(report)


@main.command("sync")
@click.argument("source")
@click.argument("dest")
@click.option("--delete", is_flag=True, help="Delete destination objects with no source.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def sync_command(opts: Options, source: str, dest: str, delete: bool, quiet: bool) -> None:
    """Copy what changed from SOURCE to DEST (size and ETag / mtime)."""
    from .transfer import sync

    src = parse_location(source, opts, is_dir=not source.startswith("s3://"))
    dst = parse_location(dest, opts, is_dir=not dest.startswith("s3://"))
    progress, update = _progress_handler(quiet)

    async def go() -> Any:
        async with src.storage, dst.storage:
            return await sync(
                src.storage,
                dst.storage,
                src_prefix=src.key,
                dst_prefix=dst.key,
                delete=delete,
                chunk_size=opts.chunk_size,
                on_progress=update,
            )

    report = _with_progress(progress, lambda: run(opts, go()))
    _finish(report)


def _join(prefix: str, rest: str) -> str:
    rest = rest.lstrip("/")
    if not prefix:
        return rest
    return prefix.rstrip("/") + "/" + rest


def _with_progress(progress: Any, fn: Any) -> Any:
    if progress is None:
        return fn()
    with progress:
        return fn()


def _finish(report: Any) -> None:
    for failure in report.failures:
        click.echo(f"aiokeg: failed: {failure.source}: {failure.error}", err=True)
    click.echo(report.summary(), err=True)
    if report.failures:
        sys.exit(1)


@main.command("abort-uploads")
@click.argument("location")
@click.option("--older-than", default=24 * 3600, show_default=True, help="Seconds.")
@click.pass_obj
def abort_uploads_command(opts: Options, location: str, older_than: int) -> None:
    """Abort incomplete multipart uploads left by crashed writers."""
    loc = parse_location(location, opts)
    if not loc.is_s3:
        raise click.UsageError("abort-uploads needs an s3:// location")
    storage = loc.storage
    assert isinstance(storage, AsyncS3Storage)

    async def go() -> int:
        async with storage:
            aborted = await storage.abort_incomplete_uploads(
                loc.key, older_than=timedelta(seconds=older_than)
            )
            return len(aborted)

    click.echo(f"aborted {run(opts, go())} upload(s)", err=True)


@main.command("demo")
@click.option("--files", default=200, show_default=True, help="How many files to generate.")
@click.option("--max-size", default=64, show_default=True, help="Largest file, in MiB.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_obj
def demo_command(opts: Options, files: int, max_size: int, quiet: bool) -> None:
    """Round-trip a generated dataset through an embedded S3 server, verified byte for byte."""
    from ._demo import run_demo

    sys.exit(
        run_demo(
            files=files,
            max_size=max_size * MiB,
            quiet=quiet,
            endpoint_url=opts.endpoint_url,
            access_key=opts.access_key,
            secret_key=opts.secret_key,
        )
    )


if __name__ == "__main__":  # pragma: no cover
    main()
