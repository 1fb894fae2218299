"""The file helpers every stage shares: one hash, one policy for syncing a folder."""

from __future__ import annotations

import errno
import hashlib
import io
import os

import pytest

from csvreport import files


def test_sha256_of_reads_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "HASH_CHUNK", 7)
    content = bytes(range(256)) * 3
    path = tmp_path / "a.bin"
    path.write_bytes(content)
    assert files.sha256_of(path) == hashlib.sha256(content).hexdigest()
    handle = io.BytesIO(content)
    handle.seek(10)
    assert files.sha256_and_size(handle) == (hashlib.sha256(content[10:]).hexdigest(), len(content) - 10)


def test_replace_durably_renames_and_syncs_the_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    (tmp_path / ".a.tmp").write_text("new")
    (tmp_path / "a").write_text("old")
    files.replace_durably(tmp_path / ".a.tmp", tmp_path / "a")
    assert (tmp_path / "a").read_text() == "new" and not (tmp_path / ".a.tmp").exists()
    assert len(synced) == 1


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOTSUP])
def test_a_file_system_that_cannot_sync_folders_is_accepted(tmp_path, monkeypatch, code):
    def refuse(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", refuse)
    files.fsync_dir(tmp_path)


def test_any_other_failure_to_sync_a_folder_is_raised(tmp_path, monkeypatch):
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(files.os, "fsync", broken)
    with pytest.raises(OSError, match="Input/output error"):
        files.fsync_dir(tmp_path)
    with pytest.raises(FileNotFoundError):
        files.fsync_dir(tmp_path / "missing")
