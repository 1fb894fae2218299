"""Files on disk, one way everywhere: content hashes, and renames that survive a power loss."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import BinaryIO

HASH_CHUNK = 1 << 20
# A file system that cannot sync a directory says so with one of these; there is nothing more to do.
_NO_DIRECTORY_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's content, as hex."""
    with open(path, "rb") as handle:
        return sha256_and_size(handle)[0]


def sha256_and_size(handle: BinaryIO) -> tuple[str, int]:
    """The SHA-256 (hex) and the number of bytes of what `handle` reads from where it stands."""
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def fsync_dir(folder: Path) -> None:
    """Make a rename, creation or removal in `folder` durable.

    Raises OSError when the folder cannot be opened or synced: the caller's file may not
    survive a power loss. A file system that cannot sync directories at all is accepted.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIRECTORY_SYNC:
            raise
    finally:
        os.close(fd)


def replace_durably(temp: Path, final: Path) -> None:
    """Rename a written and synced `temp` over `final`, and sync the folder."""
    os.replace(temp, final)
    fsync_dir(final.parent)
