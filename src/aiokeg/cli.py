"""The ``aiokeg`` command: ls, cp, sync, rm, stat, cat, link, abort-uploads, demo.

Locations are ``s3://bucket/key`` or local paths. Exit codes: 0 success,
1 some transfers failed, 2 usage error. Needs the ``cli`` extra
(``pip install "aiokeg[cli]"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import posixpath
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
    session_token: str | None
    chunk_size: int
    concurrency: int
    debug: bool

    def s3(self, bucket: str) -> AsyncS3Storage:
        """A storage for ``bucket`` with these options."""
        return AsyncS3Storage(
            bucket,
            self.region,
            self.access_key,
            self.secret_key,
            self.profile,
            endpoint_url=self.endpoint_url,
            aws_session_token=self.session_token,
            chunk_size=self.chunk_size,
            max_concurrency=self.concurrency,
        )


@dataclasses.dataclass(frozen=True)
class Location:
    """A parsed location: ``s3://bucket/key`` (``bucket`` set) or a local path."""

    text: str
    bucket: str | None
    #: The S3 key (or prefix), or the absolute local path.
    path: str

    @property
    def is_s3(self) -> bool:
        """True for an ``s3://`` location."""
        return self.bucket is not None

    def names_folder(self) -> bool:
        """True if this location names a folder (aws CLI rules).

        An S3 location does when its key is empty or ends with ``/``; a local
        one when it ends with a separator or is an existing directory.
        """
        if self.is_s3:
            return self.path == "" or self.path.endswith("/")
        return self.text.endswith(("/", os.sep)) or os.path.isdir(self.path)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.path}" if self.is_s3 else self.path


def parse_location(text: str) -> Location:
    """Turn ``s3://bucket/key`` or a local path into a :class:`Location`."""
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        if not bucket:
            raise click.UsageError(f"{text!r} names no bucket: use s3://bucket/key")
        return Location(text, bucket, key)
    if "://" in text:
        raise click.UsageError(f"{text!r}: only s3:// locations and local paths are supported")
    return Location(text, None, os.path.abspath(text))


def file_storage(loc: Location, opts: Options) -> tuple[AsyncStorage, str]:
    """The storage holding the single object ``loc`` names, and its key there."""
    if loc.is_s3:
        assert loc.bucket is not None
        return opts.s3(loc.bucket), loc.path
    folder, name = os.path.split(loc.path)
    return AsyncLocalStorage(folder, chunk_size=opts.chunk_size), name


def tree_storage(loc: Location, opts: Options, *, create: bool = False) -> tuple[AsyncStorage, str]:
    """The storage and folder prefix of the tree ``loc`` names (``create``: make a local one)."""
    if loc.is_s3:
        assert loc.bucket is not None
        return opts.s3(loc.bucket), loc.path
    if create:
        os.makedirs(loc.path, exist_ok=True)
    elif not os.path.isdir(loc.path):
        raise click.UsageError(f"{loc.text!r} is not a directory")
    return AsyncLocalStorage(loc.path, chunk_size=opts.chunk_size), ""


class Interrupted(Exception):
    """Ctrl-C arrived; the command's clean-up has run."""


def run(opts: Options, coro: Coroutine[Any, Any, T]) -> T:
    """Run a command; turn every error into one readable line and exit code 1.

    Ctrl-C cancels the command (open uploads are aborted, temporary files
    removed, both shielded from the cancellation) and exits with 130.
    """
    from botocore.exceptions import BotoCoreError

    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        click.echo(
            "aiokeg: interrupted; open uploads were aborted and temporary files removed",
            err=True,
        )
        sys.exit(130)
    except (StorageError, OSError, ValueError, BotoCoreError) as exc:
        if opts.debug:
            raise
        click.echo(f"aiokeg: error: {_one_line(exc)}", err=True)
        sys.exit(1)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _Group(click.Group):
    """Accepts the global options after the subcommand too (``aiokeg ls -q --debug ...``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _hoist_global_options(self, args))


def _hoist_global_options(group: click.Group, args: list[str]) -> list[str]:
    takes_value: dict[str, bool] = {}
    for param in group.params:
        if isinstance(param, click.Option):
            for name in param.opts:
                takes_value[name] = not param.is_flag
    front: list[str] = []
    rest: list[str] = []
    seen_command = False
    i = 0
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        if arg == "--":
            rest.extend(args[i:])
            break
        if name in takes_value and name not in ("-h", "--help", "--version"):
            count = 1 if "=" in arg or not takes_value[name] else 2
            (front if seen_command else rest).extend(args[i : i + count])
            i += count
            continue
        if not arg.startswith("-"):
            seen_command = True
        rest.append(arg)
        i += 1
    return front + rest


_EPILOG = """\b
Locations:
  s3://bucket/key   an object (or prefix) in a bucket
  path              a local file or directory

\b
Path rule: in cp -r, sync, rm -r and ls -r a prefix names a folder:
  s3://b/backup and s3://b/backup/ both mean the keys under backup/, and
  nothing outside that folder (backup2/, backupX) is ever copied over or
  deleted. Plain ls keeps S3's prefix semantics. Destinations follow the
  aws CLI: one ending in / (or an existing directory) receives the file
  under its own name; local folders are created.

\b
Environment:
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE,
  AWS_REGION, AWS_CA_BUNDLE and ~/.aws/config: botocore's credential and
  configuration chain, used whole.
  AIOKEG_ENDPOINT_URL: an S3-compatible server (like --endpoint-url).

\b
Exit codes: 0 success; 1 an error, or some files failed, or rm found
nothing to delete; 2 bad usage; 130 interrupted (after clean-up).
"""


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "AIOKEG"},
    epilog=_EPILOG,
)
@click.version_option(package_name="aiokeg", prog_name="aiokeg")
@click.option("--endpoint-url", envvar="AIOKEG_ENDPOINT_URL", help="S3-compatible server URL.")
@click.option("--region", envvar="AWS_REGION", help="AWS region.")
@click.option("--profile", help="Profile in ~/.aws/config (default: AWS_PROFILE).")
@click.option("--access-key", help="Access key id (default: botocore's chain).")
@click.option("--secret-key", help="Secret access key.")
@click.option("--session-token", help="Session token of temporary credentials.")
@click.option("--chunk-size", default=8, show_default=True, help="Part / range size in MiB.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight per file.")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def main(ctx: click.Context, /, **kwargs: Any) -> None:
    """Asyncio-native object storage from the command line."""
    ctx.obj = Options(
        endpoint_url=kwargs["endpoint_url"],
        region=kwargs["region"],
        profile=kwargs["profile"],
        access_key=kwargs["access_key"],
        secret_key=kwargs["secret_key"],
        session_token=kwargs["session_token"],
        chunk_size=int(kwargs["chunk_size"]) * MiB,
        concurrency=kwargs["concurrency"],
        debug=kwargs["debug"],
    )


@main.command("ls")
@click.argument("location")
@click.option("-r", "--recursive", is_flag=True, help="List the folder LOCATION names.")
@click.option("-l", "--long", "long_format", is_flag=True, help="Show size and date.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def ls_command(
    opts: Options, location: str, recursive: bool, long_format: bool, as_json: bool
) -> None:
    """List objects whose key starts with a prefix (with -r: under a folder)."""
    from .transfer import folder

    loc = parse_location(location)
    if loc.is_s3:
        storage, prefix = tree_storage(loc, opts)
    else:
        storage, prefix = (
            tree_storage(loc, opts) if os.path.isdir(loc.path) else file_storage(loc, opts)
        )
    if recursive:
        prefix = folder(prefix)

    async def go() -> list[Any]:
        async with storage:
            return await storage.list(prefix)

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
    storage, key = file_storage(parse_location(location), opts)

    async def go() -> Any:
        async with storage:
            return await storage.stat(key)

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
    """Write an object to standard output (a closed pipe ends quietly)."""
    storage, key = file_storage(parse_location(location), opts)

    async def go() -> None:
        out = sys.stdout.buffer
        async with storage, storage.open(key, "rb") as f:
            async for chunk in f:
                await asyncio.to_thread(out.write, chunk)
        await asyncio.to_thread(out.flush)

    try:
        run(opts, go())
    except BrokenPipeError:
        _quiet_broken_pipe()


def _quiet_broken_pipe() -> None:
    # The reader (`head`) has what it wanted. Point stdout at /dev/null so the
    # interpreter's final flush does not complain, and end without a message.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


@main.command("rm")
@click.argument("location")
@click.option("-r", "--recursive", is_flag=True, help="Delete every key under the folder.")
@click.option("--dryrun", is_flag=True, help="Print what would be deleted; delete nothing.")
@click.option("--force", is_flag=True, help="Allow deleting a whole bucket's contents.")
@click.pass_obj
def rm_command(opts: Options, location: str, recursive: bool, dryrun: bool, force: bool) -> None:
    """Delete an object (or, with -r, every object under a folder).

    Exits 1 when the object does not exist (nothing was deleted).
    """
    from .transfer import delete_tree, folder

    loc = parse_location(location)
    if recursive:
        storage, prefix = tree_storage(loc, opts)
        if not folder(prefix) and not force:
            raise click.UsageError("refusing to delete everything in the bucket: add --force")

        async def remove_tree() -> list[str]:
            async with storage:
                if folder(prefix):
                    return await delete_tree(storage, prefix, dry_run=dryrun)
                keys = [e.name async for e in storage.iter_list("")]
                if not dryrun:
                    await storage.delete_many(keys)
                return keys

        keys = run(opts, remove_tree())
        base = f"s3://{loc.bucket}/" if loc.is_s3 else loc.path.rstrip(os.sep) + os.sep
        for key in keys:
            if dryrun:
                click.echo(f"(dryrun) delete: {base}{key}")
        verb = "would delete" if dryrun else "deleted"
        click.echo(f"{verb} {len(keys)} object(s)", err=True)
        return
    if loc.names_folder():
        raise click.UsageError(
            f"{location!r} names a folder; use 'aiokeg rm -r {location}' to delete what is under it"
        )
    storage, key = file_storage(loc, opts)

    async def remove_one() -> bool:
        async with storage:
            if not await storage.exists(key):
                return False
            if not dryrun:
                await storage.delete(key)
            return True

    if not run(opts, remove_one()):
        click.echo(f"aiokeg: error: {loc} does not exist; nothing was deleted", err=True)
        sys.exit(1)
    click.echo(f"{'(dryrun) ' if dryrun else ''}delete: {loc}")


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
    loc = parse_location(location)
    if not loc.is_s3:
        raise click.UsageError("link needs an s3:// location: local files have no links")
    storage, key = file_storage(loc, opts)

    async def go() -> str:
        async with storage:
            return await storage.link_to(key, operation, timedelta(seconds=expires))

    click.echo(run(opts, go()))


def _progress_handler(quiet: bool) -> tuple[Any, Any]:
    if quiet or not sys.stderr.isatty():
        return None, None
    from ._progress import transfer_progress

    return transfer_progress()


@main.command("cp")
@click.argument("source")
@click.argument("dest")
@click.option("-r", "--recursive", is_flag=True, help="Copy every object under the folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def cp_command(opts: Options, source: str, dest: str, recursive: bool, quiet: bool) -> None:
    """Copy a file or (with -r) a folder, in either direction or S3 to S3.

    A destination ending in / or naming an existing directory receives the
    file under its own name; local folders are created (as aws s3 cp does).
    """
    from .transfer import copy_many, copy_tree

    src, dst = parse_location(source), parse_location(dest)
    options: dict[str, Any] = {
        "chunk_size": opts.chunk_size,
        "per_file_concurrency": opts.concurrency,
    }
    progress, update = _progress_handler(quiet)
    if recursive:
        src_storage, src_prefix = tree_storage(src, opts)
        dst_storage, dst_prefix = tree_storage(dst, opts, create=True)

        async def tree() -> Any:
            async with src_storage, dst_storage:
                return await copy_tree(
                    src_storage,
                    dst_storage,
                    src_prefix=src_prefix,
                    dst_prefix=dst_prefix,
                    on_progress=update,
                    **options,
                )

        _finish(_with_progress(progress, lambda: run(opts, tree())))
        return
    if src.names_folder():
        raise click.UsageError(f"{source!r} names a folder: add -r to copy what is under it")
    if not src.is_s3 and not os.path.exists(src.path):
        raise click.UsageError(f"{source!r} does not exist")
    name = posixpath.basename(src.path) if src.is_s3 else os.path.basename(src.path)
    if dst.names_folder():
        dst = dataclasses.replace(
            dst, path=dst.path + name if dst.is_s3 else os.path.join(dst.path, name)
        )
    if not dst.is_s3:
        os.makedirs(os.path.dirname(dst.path), exist_ok=True)
    src_storage, src_key = file_storage(src, opts)
    dst_storage, dst_key = file_storage(dst, opts)

    async def one() -> Any:
        async with src_storage, dst_storage:
            return await copy_many(
                src_storage, dst_storage, [(src_key, dst_key, 0)], on_progress=update, **options
            )

    _finish(_with_progress(progress, lambda: run(opts, one())))


@main.command("sync")
@click.argument("source")
@click.argument("dest")
@click.option("--delete", is_flag=True, help="Delete destination objects with no source.")
@click.option("--dryrun", is_flag=True, help="Print what would be copied and deleted.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def sync_command(
    opts: Options, source: str, dest: str, delete: bool, dryrun: bool, quiet: bool
) -> None:
    """Copy what changed from the folder SOURCE to the folder DEST.

    Decided from the two listings (size, then ETag or modification time).
    """
    from .transfer import sync

    src, dst = parse_location(source), parse_location(dest)
    src_storage, src_prefix = tree_storage(src, opts)
    dst_storage, dst_prefix = tree_storage(dst, opts, create=not dryrun)
    progress, update = _progress_handler(quiet or dryrun)

    async def go() -> Any:
        async with src_storage, dst_storage:
            return await sync(
                src_storage,
                dst_storage,
                src_prefix=src_prefix,
                dst_prefix=dst_prefix,
                delete=delete,
                dry_run=dryrun,
                chunk_size=opts.chunk_size,
                per_file_concurrency=opts.concurrency,
                on_progress=update,
            )

    report = _with_progress(progress, lambda: run(opts, go()))
    if dryrun:
        for result in report.results:
            if not result.skipped:
                click.echo(f"(dryrun) copy: {result.source} -> {result.dest}")
        for key in report.deleted:
            click.echo(f"(dryrun) delete: {key}")
    _finish(report)


def _with_progress(progress: Any, fn: Any) -> Any:
    if progress is None:
        return fn()
    with progress:
        return fn()


#: Failures listed one by one before the rest are only counted.
_FAILURES_SHOWN = 10


def _finish(report: Any) -> None:
    causes: dict[str, int] = {}
    for failure in report.failures:
        cause = _one_line(failure.error)
        if failure.source not in cause:
            cause = f"{failure.source}: {cause}"
        causes[cause] = causes.get(cause, 0) + 1
    for shown, (cause, count) in enumerate(causes.items()):
        if shown == _FAILURES_SHOWN:
            click.echo(f"aiokeg: ... and {len(causes) - shown} more failure(s)", err=True)
            break
        times = f" ({count} files)" if count > 1 else ""
        click.echo(f"aiokeg: failed: {cause}{times}", err=True)
    click.echo(report.summary(), err=True)
    if report.failures:
        sys.exit(1)


@main.command("abort-uploads")
@click.argument("location")
@click.option("--older-than", default=24 * 3600, show_default=True, help="Seconds.")
@click.pass_obj
def abort_uploads_command(opts: Options, location: str, older_than: int) -> None:
    """Abort incomplete multipart uploads left by crashed writers."""
    loc = parse_location(location)
    if not loc.is_s3 or loc.bucket is None:
        raise click.UsageError("abort-uploads needs an s3:// location")
    storage = opts.s3(loc.bucket)

    async def go() -> int:
        async with storage:
            aborted = await storage.abort_incomplete_uploads(
                loc.path, older_than=timedelta(seconds=older_than)
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
