"""Files that cannot be loaded go to quarantine/<source>/ with the reason beside them.

A file inside the home is moved when its drop folder allows it; from a read-only folder,
and always from outside the home (unless the source sets `move_bad_files = true`), it is
copied instead, and `ingestion_log` remembers its content so it is not tried again until
an operator replays it.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Optional

from csvreport.config import Settings
from csvreport.db import utcnow
from csvreport.errors import CsvReportError
from csvreport.files import sha256_of
from csvreport.rows import BadRow

REASON_SUFFIX = ".reason.json"
REJECTS_SUFFIX = ".rejects.csv"


def source_folder(settings: Settings, source: str) -> Path:
    folder = settings.paths.quarantine / source
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CsvReportError(f"cannot create the quarantine folder {folder}: {exc.strerror or exc}; "
                             "check paths.quarantine and its permissions") from None
    return folder


def still_there(path: str) -> bool:
    """Whether a recorded file is still there; one this user may not look at (a monitoring user outside
    the home's group) counts as there, never as a deleted one."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def reason_path(quarantined: Path) -> Path:
    return quarantined.with_name(quarantined.name + REASON_SUFFIX)


def _same_content(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_of(path) == sha256


def _free_name(folder: Path, name: str, sha256: str) -> Path:
    """The file's own name, or one tagged with its hash; a copy of the same content (left by a
    run that crashed between copy and unlink) is reused rather than duplicated."""
    target = folder / name
    if (not target.exists() and not reason_path(target).exists()) or _same_content(target, sha256):
        return target
    stem, dot, suffix = name.rpartition(".")
    tagged = f"{stem}.{sha256[:12]}.{suffix}" if dot and stem else f"{name}.{sha256[:12]}"
    return folder / tagged


def quarantine_file(settings: Settings, source: str, path: Path, sha256: str, reason: str,
                    first_bad_line: Optional[int], move: bool = True) -> Path:
    """Copy the file into quarantine/<source>/ with its reason beside it; the original stays.

    `move` says whether the caller will remove the original: not for a file outside the home,
    which csvreport does not own (the reason file then says so).

    The caller records the quarantine and then calls `remove_original`: at every moment the
    file exists in one place at least, a copy in quarantine always has its reason beside it,
    and a run killed before the record leaves the original to be tried again, never a
    quarantined file that nothing remembers. Copy-then-unlink rather than rename so a drop
    folder on another device works too.
    """
    folder = source_folder(settings, source)
    target = _free_name(folder, path.name, sha256)
    try:
        if not _same_content(target, sha256):
            tmp = target.with_name(target.name + ".tmp")
            shutil.copy2(path, tmp)
            os.replace(tmp, target)
        kept = {} if move else {"note": "outside the home: the original stays where it is (move_bad_files = false)"}
        _write_reason(target, {**_details(source, path, sha256, reason, first_bad_line), "moved": move, **kept})
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CsvReportError(f"the disk is full: cannot copy {path} into quarantine ({target}); free space "
                                 f"on the file system of {folder}, then run ingest again (the file was left where "
                                 "it is)") from None
        raise CsvReportError(
            f"cannot put {path} into quarantine ({target}): {exc.strerror or exc}; make {folder} writable for "
            f"the user running csvreport and check the free disk space (the file was left where it is)") from None
    return target


def remove_original(target: Path, path: Path, source: str, sha256: str, reason: str,
                    first_bad_line: Optional[int]) -> bool:
    """Remove the original of a recorded quarantine; False (and said in the reason file) when the
    drop folder refuses: the copy stays and the caller remembers the original."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        note = {} if isinstance(exc, PermissionError) else {"note": f"could not remove the original: {exc}"}
        _write_reason(target, {**_details(source, path, sha256, reason, first_bad_line), "moved": False, **note})
        return False
    return True


def _details(source: str, path: Path, sha256: str, reason: str, first_bad_line: Optional[int]) -> dict:
    return {"source": source, "original_path": str(path), "sha256": sha256, "reason": reason,
            "first_bad_line": first_bad_line, "time": utcnow()}


def _write_reason(target: Path, details: dict) -> None:
    tmp = reason_path(target).with_suffix(".tmp")
    tmp.write_text(json.dumps(details, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, reason_path(target))


def rejects_path(settings: Settings, source: str, file_name: str, sha256: str, taken: set[str]) -> Path:
    """quarantine/<source>/<file>.rejects.csv, tagged with the content hash when another load owns that name."""
    folder = source_folder(settings, source)
    target = folder / (file_name + REJECTS_SUFFIX)
    if str(target) in taken:
        target = folder / (f"{file_name}.{sha256[:12]}" + REJECTS_SUFFIX)
    return target


def write_rejects(target: Path, header: list[str], bad_rows: list[BadRow]) -> None:
    """Line number and reason, then the row's own fields under the file's header."""
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "reason", *header])
        for row in bad_rows:
            writer.writerow([row.line, row.reason, *row.fields])
    os.replace(tmp, target)
