"""Discovery: which files of a source are there, settled, and worth a look (changed since seen)."""

from __future__ import annotations

import glob
import os
import sqlite3
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from csvreport.config import Settings, Source
from csvreport.db import current_user
from csvreport.patterns import absolute_pattern, pattern_folder

SKIPPED_SUFFIXES = (".tmp", ".part", ".partial")


@dataclass(frozen=True)
class Candidate:
    path: Path
    size: int
    mtime_ns: int


@dataclass
class Found:
    ready: list[Candidate]
    waiting: list[Path]  # modified less than settle_seconds ago
    links: list[Path] = field(default_factory=list)  # symbolic links, skipped unless follow_symlinks
    missing: list[tuple[str, str]] = field(default_factory=list)  # (folder, why) of patterns that cannot be read


def find_files(settings: Settings, source: Source, now: float | None = None) -> Found:
    """Files matching the source's patterns, oldest first, minus those still being written."""
    now = time.time() if now is None else now
    own = _own_folders(settings)
    database = settings.paths.database.absolute()
    own_files = {database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm", "-journal", ".lock")}
    # Plain string prefixes: Path.is_relative_to per file and folder cost 0.25 s for 10,000 files.
    own_prefixes = tuple(os.path.join(str(folder), "") for folder in own)
    own_names = {str(folder) for folder in own}
    seen: set[Path] = set()
    found = Found([], [])
    for pattern in source.patterns:
        full = absolute_pattern(pattern, settings.home)
        folder = pattern_folder(full)
        problem = folder_problem(folder)
        if problem:
            found.missing.append((folder, problem))
            continue
        linked = _LinkedFolders(folder)
        for name in glob.iglob(full, recursive=True):
            path = Path(name).absolute()
            text = str(path)
            if path in seen or not _wanted(path) or path in own_files or text.startswith(own_prefixes) \
                    or text in own_names:
                continue
            seen.add(path)
            try:
                info = path.lstat()
                if not source.follow_symlinks and (stat.S_ISLNK(info.st_mode) or linked.below(path.parent)):
                    # Reading it would read (and quarantine would copy) whatever it points at.
                    found.links.append(path)
                    continue
                if stat.S_ISLNK(info.st_mode):
                    info = path.stat()
            except OSError:
                continue  # vanished between listing and stat, or a dangling link that is followed
            if not stat.S_ISREG(info.st_mode):
                continue
            if now - info.st_mtime < settings.settle_seconds:
                found.waiting.append(path)
                continue
            found.ready.append(Candidate(path, info.st_size, info.st_mtime_ns))
    found.ready.sort(key=lambda c: (c.mtime_ns, str(c.path)))
    return found


def folder_problem(folder: str) -> Optional[str]:
    """Why a pattern's folder cannot be searched, or None (a folder that is missing is not an error of
    csvreport's, but nothing will ever be found there, so it must be said)."""
    if not os.path.isdir(folder):
        return "does not exist" if not os.path.lexists(folder) else "is not a folder"
    if not os.access(folder, os.R_OK | os.X_OK):
        return f"is not readable by user {current_user()}"
    return None


class _LinkedFolders:
    """Which folders below a pattern's own folder are symbolic links (or lie under one), asked once each.

    Links on the way to the pattern's folder are the operator's, and followed; a link found below
    it was put there by whoever may write the drop folder, and could lead anywhere.
    """

    def __init__(self, top: str):
        self.top = os.path.normpath(os.path.abspath(top))
        self.known: dict[str, bool] = {self.top: False}

    def below(self, folder: Path) -> bool:
        text = os.path.normpath(str(folder))
        if text in self.known:
            return self.known[text]
        parent = os.path.dirname(text)
        if parent == text or not (text + os.sep).startswith(self.top + os.sep):
            answer = False
        else:
            answer = self.below(Path(parent)) or os.path.islink(text)
        self.known[text] = answer
        return answer


def seen_unchanged(conn: sqlite3.Connection, source: str, candidate: Candidate) -> bool:
    """Whether seen_files holds this path with the same size and mtime: not worth reading again."""
    row = conn.execute("SELECT size, mtime_ns FROM seen_files WHERE source = ? AND path = ?",
                       (source, str(candidate.path))).fetchone()
    return row is not None and row[0] == candidate.size and row[1] == candidate.mtime_ns


def _own_folders(settings: Settings) -> list[Path]:
    """Folders csvreport writes into, never read as input: quarantine, reports, archive, logs and the
    database's folder; but not one that is the home folder itself (or holds it), where inboxes live."""
    home = settings.home.absolute()
    folders = [settings.paths.quarantine, settings.paths.reports, settings.paths.archive, settings.paths.logs,
               settings.paths.database.parent]
    return [f.absolute() for f in folders if not home.is_relative_to(f.absolute())]


def _wanted(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and not name.lower().endswith(SKIPPED_SUFFIXES)
