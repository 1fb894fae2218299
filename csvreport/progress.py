"""A progress bar for long work when a person watches a terminal; nothing under cron."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional


@contextmanager
def file_progress(enabled: bool) -> Iterator[Optional[Callable[[str, int], None]]]:
    """Yields a callback `(source, bytes_done)` that advances a bar, or None when not on a terminal."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TextColumn("{task.fields[files]} files"), transient=True) as bar:
        task = bar.add_task("ingest", total=None, files=0)

        def advance(source: str, size: int) -> None:
            files = bar.tasks[0].fields["files"] + 1
            bar.update(task, advance=size, description=f"ingest {source}", files=files)

        yield advance
