"""The command line's progress bar: binary units, the summary's rate, an ETA, the current file.

Sizes are in KiB/MiB/GiB like the summary line, and the rate is the average
since the start (bytes ÷ elapsed), so the bar's last rate agrees with the
summary. When every byte is sent but files are still finishing (multipart
uploads completing), the bar says so instead of sitting silently at 100 %.
"""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, Progress, ProgressColumn, Task, TimeRemainingColumn
from rich.text import Text

__all__ = ["binary_size", "transfer_progress"]


def binary_size(n: float) -> str:
    """``n`` bytes in binary units (``"1.5 MiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


class _Bytes(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = binary_size(task.total) if task.total is not None else "?"
        return Text(f"{binary_size(task.completed)} / {total}")


class _AverageRate(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{binary_size(rate)}/s")


def transfer_progress() -> tuple[Progress, Any]:
    """A rich ``Progress`` and the ``on_progress`` handler that drives it."""
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        _Bytes(),
        _AverageRate(),
        TimeRemainingColumn(),
        "{task.fields[current]}",
        transient=False,
    )
    task = progress.add_task("starting", total=None, current="")

    def update(event: Any) -> None:
        files = f"{event.files_done}/{event.files_total} files"
        finishing = event.files_total - event.files_done
        if event.bytes_total and event.bytes_done >= event.bytes_total and finishing:
            files += f", completing {finishing} upload(s)"
        progress.update(
            task,
            completed=event.bytes_done,
            total=event.bytes_total or None,
            description=files,
            current=_short(event.current),
        )

    return progress, update


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]
