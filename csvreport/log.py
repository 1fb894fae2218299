"""Structured log lines: one event per line, `key=value` (or JSON), on stdout and in logs/.

Configured once per process by `setup()`; everything else calls `event()`.
"""

from __future__ import annotations

import errno
import json
import logging
import logging.handlers
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

LOGGER_NAME = "csvreport"
_FIELDS = ("stage", "source", "file", "rows")
_logger = logging.getLogger(LOGGER_NAME)


def _plain(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t\\'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    def __init__(self, as_json: bool = False, with_stack: bool = True):
        super().__init__()
        self.as_json = as_json
        self.with_stack = with_stack

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
        }
        extra = getattr(record, "fields", {})
        fields["stage"] = extra.get("stage", "main")
        for key in _FIELDS[1:]:
            if extra.get(key) is not None:
                fields[key] = extra[key]
        fields["msg"] = record.getMessage()
        for key, value in extra.items():
            if key not in fields and value is not None:
                fields[key] = value
        if self.as_json:
            line = json.dumps(fields, ensure_ascii=False, default=str)
        else:
            line = " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
        if record.exc_info and self.with_stack:
            stack = self.formatException(record.exc_info)
            if self.as_json:
                line = json.dumps({**fields, "stack": stack}, ensure_ascii=False, default=str)
            else:
                line += "\n" + stack
        return line


class _Quiet:
    """A handler that, when it cannot write (a full disk, a closed pipe), says so once on stderr and then
    stops, instead of Python's "--- Logging error ---" traceback for every line into cron's mail."""

    broken = False
    what = "the output"

    def emit(self, record: logging.LogRecord) -> None:
        if not self.broken:
            super().emit(record)  # type: ignore[misc]

    def flush(self) -> None:
        if not self.broken:
            super().flush()  # type: ignore[misc]

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        except OSError:
            pass  # the last buffered line cannot be written either; it was said once already

    def handleError(self, record: logging.LogRecord) -> None:
        if self.broken:
            return
        self.broken = True
        exc = sys.exc_info()[1]
        if isinstance(exc, BrokenPipeError):
            return  # the reader went away (`| head`): nobody is left to tell
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        full = "the disk is full: " if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        try:
            sys.stderr.write(f"csvreport: {full}cannot write {self.what} ({reason}); the rest of this run is not "
                             "logged there\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


class _StreamHandler(_Quiet, logging.StreamHandler):
    what = "to stdout"


class _FileHandler(_Quiet, logging.handlers.RotatingFileHandler):
    def __init__(self, path: Path, max_bytes: int, backups: int):
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.what = f"the log file {path}"


def log_file() -> Optional[Path]:
    """The log file, while it is being written; None when there is none or it failed (a full disk)."""
    for handler in _logger.handlers:
        if isinstance(handler, _FileHandler) and not handler.broken:
            return Path(handler.baseFilename)
    return None


def setup(logs_dir: Optional[Path], quiet: bool = False, fmt: str = "kv", max_bytes: int = 10 * 2**20,
          backups: int = 5) -> None:
    """Send events to stdout (warnings only with `quiet`) and to logs/csvreport.log, rotated by size."""
    for handler in list(_logger.handlers):
        _logger.removeHandler(handler)
        handler.close()
    _logger.setLevel(logging.INFO)
    _logger.propagate = False
    as_json = fmt == "json"
    stdout = _StreamHandler(sys.stdout)
    stdout.setLevel(logging.WARNING if quiet else logging.INFO)
    # The stack of an unexpected error goes to the log file; stdout gets the line alone.
    stdout.setFormatter(KeyValueFormatter(as_json, with_stack=False))
    _logger.addHandler(stdout)
    if logs_dir is not None:
        try:
            logs_dir.mkdir(parents=True, exist_ok=True)
            handler = _FileHandler(logs_dir / "csvreport.log", max_bytes, backups)
        except OSError as exc:
            full = "the disk is full: " if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
            _logger.warning(f"{full}cannot write the log file {logs_dir / 'csvreport.log'} ({exc.strerror or exc}); "
                            "this run logs to stdout only", extra={"fields": {"stage": "log"}})
        else:
            handler.setFormatter(KeyValueFormatter(as_json))
            _logger.addHandler(handler)


def event(level: int, stage: str, msg: str, exc_info: bool = False, **fields: Any) -> None:
    _logger.log(level, msg, exc_info=exc_info, extra={"fields": {"stage": stage, **fields}})


def info(stage: str, msg: str, **fields: Any) -> None:
    event(logging.INFO, stage, msg, **fields)


def warning(stage: str, msg: str, **fields: Any) -> None:
    event(logging.WARNING, stage, msg, **fields)


def error(stage: str, msg: str, exc_info: bool = False, **fields: Any) -> None:
    event(logging.ERROR, stage, msg, exc_info=exc_info, **fields)
