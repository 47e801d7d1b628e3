"""The main job, runnable with no AWS account: ``aiokeg demo`` / ``python -m aiokeg demo``.

Starts moto's S3 server in a child process on a free port (unless an
endpoint is given), generates a dataset of mixed sizes, syncs it up and back
down through aiokeg, verifies every byte, and prints a summary table.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

from ._local import AsyncLocalStorage
from .s3 import AsyncS3Storage
from .transfer import TransferReport, sync

MiB = 1024 * 1024
BUCKET = "aiokeg-demo"
ACCESS_KEY, SECRET_KEY = "demo-access-key", "demo-secret-key"  # moto accepts any


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the child process
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    conn.send(server.get_host_and_port()[1])
    conn.recv()  # wait for "stop"
    server.stop()


class EmbeddedS3:
    """moto's S3 server in a child process, on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child,), daemon=True)

    def start(self) -> str:
        """Start the server; return its endpoint URL."""
        self._process.start()
        if not self._conn.poll(60):
            raise RuntimeError("the embedded S3 server did not start within 60 s")
        return f"http://127.0.0.1:{self._conn.recv()}"

    def stop(self) -> None:
        """Stop the server and wait for its process."""
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


def file_sizes(count: int, max_size: int, seed: int = 42) -> list[int]:
    """Mixed sizes: mostly small files, some medium, a few up to ``max_size``."""
    rng = random.Random(seed)
    sizes = []
    for i in range(count):
        roll = rng.random()
        if i == 0:
            sizes.append(max_size)
        elif i == 1:
            sizes.append(0)
        elif roll < 0.85:
            sizes.append(rng.randint(1, MiB))
        elif roll < 0.97:
            sizes.append(rng.randint(MiB, min(16 * MiB, max_size)))
        else:
            sizes.append(rng.randint(min(16 * MiB, max_size), max_size))
    return sizes


def _generate(root: str, sizes: list[int]) -> dict[str, str]:
    """Write the dataset; return each key's SHA-256 (runs in a worker thread)."""
    rng = random.Random(7)
    digests = {}
    for i, size in enumerate(sizes):
        key = f"set-{i % 7}/file-{i:04d}.bin"
        path = os.path.join(root, *key.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = rng.randbytes(size)
        with open(path, "wb") as f:
            f.write(data)
        digests[key] = hashlib.sha256(data).hexdigest()
    return digests


def _verify(root: str, digests: dict[str, str]) -> list[str]:
    """Keys whose downloaded bytes differ from what was generated (worker thread)."""
    bad = []
    for key, digest in digests.items():
        path = os.path.join(root, *key.split("/"))
        try:
            sha = hashlib.sha256()
            with open(path, "rb") as f:
                while block := f.read(MiB):
                    sha.update(block)
            if sha.hexdigest() != digest:
                bad.append(key)
        except FileNotFoundError:
            bad.append(key)
    return bad


async def _round_trip(
    endpoint: str,
    workdir: str,
    files: int,
    max_size: int,
    quiet: bool,
    credentials: tuple[str | None, str | None],
) -> dict[str, Any]:
    src_dir, dst_dir = os.path.join(workdir, "source"), os.path.join(workdir, "copy")
    await asyncio.to_thread(os.makedirs, src_dir)
    await asyncio.to_thread(os.makedirs, dst_dir)
    sizes = file_sizes(files, max_size)
    digests = await asyncio.to_thread(_generate, src_dir, sizes)
    key_id, secret = credentials
    s3 = AsyncS3Storage(
        BUCKET, "us-east-1", key_id or ACCESS_KEY, secret or SECRET_KEY, endpoint_url=endpoint
    )
    async with s3, AsyncLocalStorage(src_dir) as src, AsyncLocalStorage(dst_dir) as dst:
        client = await s3._s3.client()
        with contextlib.suppress(
            client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists
        ):
            await client.create_bucket(Bucket=BUCKET)
        up = await _with_bar(
            "upload  ",
            sum(sizes),
            quiet,
            lambda cb: sync(src, s3, dst_prefix="demo/", on_progress=cb),
        )
        down = await _with_bar(
            "download",
            sum(sizes),
            quiet,
            lambda cb: sync(s3, dst, src_prefix="demo/", on_progress=cb),
        )
        again = await sync(src, s3, dst_prefix="demo/")
        retries = s3.retries
    bad = await asyncio.to_thread(_verify, dst_dir, digests)
    return {
        "files": len(sizes),
        "bytes": sum(sizes),
        "up": up,
        "down": down,
        "again": again,
        "bad": bad,
        "retries": retries,
    }


async def _with_bar(label: str, total: int, quiet: bool, job: Any) -> TransferReport:
    if quiet or not sys.stderr.isatty():
        report: TransferReport = await job(None)
        return report
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        f"[bold]{label}[/] {{task.description}}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    ) as progress:
        task = progress.add_task("", total=total)

        def update(event: Any) -> None:
            progress.update(
                task,
                completed=event.bytes_done,
                description=f"{event.files_done}/{event.files_total} files",
            )

        report = await job(update)
    return report


def _print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="aiokeg demo: local → S3 → local")
    for column in ("step", "files", "MiB", "seconds", "MiB/s", "failed"):
        table.add_column(column, justify="right" if column != "step" else "left")
    for name, report in (("upload", result["up"]), ("download", result["down"])):
        mib = report.bytes_copied / MiB
        speed = mib / report.seconds if report.seconds else 0.0
        table.add_row(
            name,
            str(len(report.copied)),
            f"{mib:.1f}",
            f"{report.seconds:.2f}",
            f"{speed:.1f}",
            str(len(report.failures)),
        )
    again = result["again"]
    table.add_row(
        "re-sync",
        f"{len(again.results) - len(again.copied)} skipped",
        "0.0",
        f"{again.seconds:.2f}",
        "-",
        str(len(again.failures)),
    )
    console = Console()
    console.print(table)
    verdict = (
        "[green]every byte verified[/]"
        if not result["bad"]
        else (f"[red]{len(result['bad'])} file(s) differ: {result['bad'][:5]}[/]")
    )
    console.print(
        f"{result['files']} files, {result['bytes'] / MiB:.1f} MiB; "
        f"{result['retries']} request(s) retried; {verdict}"
    )


def run_demo(
    *,
    files: int = 200,
    max_size: int = 64 * MiB,
    quiet: bool = False,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> int:
    """Run the demo; return the process exit code (0 when every byte matched)."""
    server = None if endpoint_url else EmbeddedS3()
    workdir = tempfile.mkdtemp(prefix="aiokeg-demo-")
    started = time.monotonic()
    try:
        endpoint = endpoint_url or server.start()  # type: ignore[union-attr]
        print(
            f"S3 endpoint: {endpoint} (embedded moto server)"
            if server
            else f"S3 endpoint: {endpoint}"
        )
        result = asyncio.run(
            _round_trip(endpoint, workdir, files, max_size, quiet, (access_key, secret_key))
        )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    _print_summary(result)
    print(f"total {time.monotonic() - started:.1f} s")
    failed = result["bad"] or result["up"].failures or result["down"].failures
    return 1 if failed else 0
