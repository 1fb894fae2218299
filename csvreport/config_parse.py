"""Validate a parsed settings.toml, one section at a time.

Each section has its validator ([paths], [ingest], [[sources]], [[reports]], [email], [hourly],
[daily], [monitor], [[sharepoint]]); each returns its frozen value and reports what is wrong
to one shared `Problems`, so that every problem of the file is raised at once, one line each,
naming the file and the key. config.load_settings reads the file and calls `parse_settings`.
"""

from __future__ import annotations

import codecs
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from csvreport.config import (MEASURE_FUNCS, NAME_RE, PUBLIC_AUTHORITY, PUBLIC_GRAPH, SHAREPOINT_SECRET_ENV,
                              SHEET_FORBIDDEN, SLOT_RE, SMTP_PASSWORD_ENV, TYPES, Email, Limit, Measure, Paths,
                              Remote, Report, Settings, Source, did_you_mean)
from csvreport.errors import ConfigError
from csvreport.patterns import SYSTEM_FOLDERS, absolute_pattern, glob_problem, pattern_can_reach

TOP_LEVEL = {"timezone", "paths", "ingest", "sources", "reports", "hourly", "daily", "email", "monitor",
             "sharepoint"}
DEFAULT_SLOTS = ("06:00", "12:00", "18:00", "24:00")


class Problems:
    """Every problem found in one settings file, raised together by `check`."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.lines: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.lines.append(f"{self.file}: {key}: {message}")

    def check(self) -> None:
        if self.lines:
            raise ConfigError("configuration is not valid:\n" + "\n".join(self.lines))


@dataclass(frozen=True)
class Ingest:
    settle_seconds: float
    max_bad_rows: int


@dataclass(frozen=True)
class Monitor:
    ping_url: Optional[str]
    ping_timeout: float
    max_ingest_age_hours: Optional[float]
    max_sync_age_hours: float


def parse_settings(data: Mapping[str, Any], config_path: Path, home: Path, env: Mapping[str, str]) -> Settings:
    """The settings a parsed settings.toml describes, or a ConfigError listing all its problems."""
    problems = Problems(config_path)
    unknown_keys(problems, data, TOP_LEVEL, "")
    timezone = zone(problems, data.get("timezone", "UTC"), "timezone")
    paths = paths_section(problems, data, home)
    ingest = ingest_section(problems, data)
    forbidden = ForbiddenPatterns(home, _own_folders(home, config_path, paths))
    sources = sources_section(problems, data.get("sources", []), timezone, forbidden)
    reports = reports_section(problems, data.get("reports", []), {s.name: s for s in sources})
    catch_up = hourly_section(problems, data)
    slots = daily_section(problems, data)
    email = email_section(problems, data, home, env)
    monitor = monitor_section(problems, data)
    remotes = sharepoint_section(problems, data.get("sharepoint", []), home, env)
    problems.check()
    return Settings(
        home=home,
        config_path=config_path,
        timezone=timezone,
        paths=paths,
        settle_seconds=ingest.settle_seconds,
        max_bad_rows=ingest.max_bad_rows,
        sources=tuple(sources),
        reports=tuple(reports),
        catch_up_hours=catch_up,
        daily_slots=slots,
        email=email,
        ping_url=monitor.ping_url,
        ping_timeout=monitor.ping_timeout,
        max_ingest_age_hours=monitor.max_ingest_age_hours,
        remotes=tuple(remotes),
        max_sync_age_hours=monitor.max_sync_age_hours,
        env=dict(env),
    )


# -- reading values: each wrong one is a problem, and the default stands in for it ---------------------


def unknown_keys(problems: Problems, table: Mapping[str, Any], allowed: set[str], where: str,
                 explained: frozenset[str] = frozenset()) -> None:
    """Report each key not in `allowed`; those in `explained` the caller reports with their reason."""
    for unknown in sorted(set(table) - allowed - explained):
        key = f"{where}.{unknown}" if where else unknown
        problems.add(key, f"unknown key{did_you_mean(unknown, sorted(allowed))} "
                          f"(allowed: {', '.join(sorted(allowed))})")


def table(problems: Problems, data: Mapping[str, Any], key: str, allowed: set[str], where: str,
          explained: frozenset[str] = frozenset()) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.add(where, "must be a table")
        return {}
    unknown_keys(problems, value, allowed, where, explained)
    return value


def entries(problems: Problems, raw: Any, kind: str,
            allowed: set[str]) -> Iterator[tuple[int, str, Mapping[str, Any]]]:
    """The tables of an array of tables such as [[sources]], each with the name problems call it by
    (`sources.sensors`; `sources[2]`, the third, when it has no name), their unknown keys reported."""
    if not isinstance(raw, list):
        problems.add(kind, f"must be an array of tables ([[{kind}]])")
        return
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.add(f"{kind}[{i}]", "must be a table")
            continue
        name = item.get("name")
        where = f"{kind}.{name}" if isinstance(name, str) and name.strip() else f"{kind}[{i}]"
        unknown_keys(problems, item, allowed, where)
        yield i, where, item


def typed(problems: Problems, data: Mapping[str, Any], key: str, kind: type | tuple, default: Any,
          where: str) -> Any:
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        problems.add(where, f"must be a number, not {value!r}")
        return default
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        problems.add(where, f"must be of type {names}, not {type(value).__name__} {value!r}")
        return default
    return value


def strings(problems: Problems, data: Mapping[str, Any], key: str, where: str,
            allow_single: bool = True) -> tuple[str, ...]:
    if key not in data:
        return ()
    value = data[key]
    if allow_single and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(where, "must be a list of strings" + (" or a string" if allow_single else ""))
        return ()
    return tuple(value)


def zone(problems: Problems, name: Any, where: str) -> str:
    if not isinstance(name, str):
        problems.add(where, "must be a time zone name such as \"Europe/Berlin\"")
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(where, f"unknown time zone {name!r} (use an IANA name such as \"Europe/Berlin\")")
        return "UTC"
    return name


def in_home(home: Path, value: str) -> Path:
    """A configured path: absolute as given, relative to the home otherwise."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else home / path


def column_name(problems: Problems, name: Any, where: str) -> bool:
    if not isinstance(name, str) or not name.strip():
        problems.add(where, f"{name!r} is not a column name")
        return False
    if name != name.strip() or name.startswith("_") or any(ord(c) < 32 for c in name):
        problems.add(where, f"column name {name!r} must not start with '_' or a space, "
                            "nor contain control characters")
        return False
    return True


# -- [paths], [ingest], [hourly], [daily], [monitor] ------------------------------------------------------


def paths_section(problems: Problems, data: Mapping[str, Any], home: Path) -> Paths:
    raw = table(problems, data, "paths", {"database", "reports", "quarantine", "logs", "archive"}, "paths")
    defaults = {
        "database": "data/csvreport.sqlite3",
        "reports": "reports",
        "quarantine": "quarantine",
        "logs": "logs",
        "archive": "archive",
    }
    return Paths(**{k: in_home(home, typed(problems, raw, k, str, d, f"paths.{k}")) for k, d in defaults.items()})


def ingest_section(problems: Problems, data: Mapping[str, Any]) -> Ingest:
    raw = table(problems, data, "ingest", {"settle_seconds", "max_bad_rows"}, "ingest")
    settle = typed(problems, raw, "settle_seconds", (int, float), 30, "ingest.settle_seconds")
    if settle < 0:
        problems.add("ingest.settle_seconds", "must be 0 or more")
    max_bad = typed(problems, raw, "max_bad_rows", int, 0, "ingest.max_bad_rows")
    if max_bad < 0:
        problems.add("ingest.max_bad_rows", "must be 0 or more")
    return Ingest(settle_seconds=float(settle), max_bad_rows=max_bad)


def hourly_section(problems: Problems, data: Mapping[str, Any]) -> int:
    """[hourly]: how many past hours a plain `hourly` catches up."""
    raw = table(problems, data, "hourly", {"catch_up_hours"}, "hourly")
    catch_up: int = typed(problems, raw, "catch_up_hours", int, 24, "hourly.catch_up_hours")
    if not 1 <= catch_up <= 24 * 31:
        problems.add("hourly.catch_up_hours", "must be between 1 and 744")
    return catch_up


def daily_section(problems: Problems, data: Mapping[str, Any]) -> tuple[str, ...]:
    """[daily]: the slots a daily workbook is written at, sorted, each once."""
    raw = table(problems, data, "daily", {"slots"}, "daily")
    slots = strings(problems, raw, "slots", "daily.slots", allow_single=False) if "slots" in raw else DEFAULT_SLOTS
    for slot in slots:
        if not SLOT_RE.match(slot) or slot > "24:00" or slot == "00:00":
            problems.add("daily.slots", f"{slot!r} is not a time from \"00:01\" to \"24:00\" (HH:MM)")
    return tuple(sorted(set(slots)))


def monitor_section(problems: Problems, data: Mapping[str, Any]) -> Monitor:
    raw = table(problems, data, "monitor", {"ping_url", "ping_timeout", "max_ingest_age_hours", "max_sync_age_hours"},
                "monitor")
    ping_url = typed(problems, raw, "ping_url", str, None, "monitor.ping_url")
    if ping_url is not None and not re.match(r"https?://[^\s/]+", ping_url):
        problems.add("monitor.ping_url", f"{ping_url!r} is not an http(s) URL")
    ping_timeout = float(typed(problems, raw, "ping_timeout", (int, float), 10, "monitor.ping_timeout"))
    max_age = typed(problems, raw, "max_ingest_age_hours", (int, float), None, "monitor.max_ingest_age_hours")
    if max_age is not None and max_age <= 0:
        problems.add("monitor.max_ingest_age_hours", "must be more than 0")
    max_sync_age = typed(problems, raw, "max_sync_age_hours", (int, float), 6, "monitor.max_sync_age_hours")
    if max_sync_age <= 0:
        problems.add("monitor.max_sync_age_hours", "must be more than 0")
    return Monitor(ping_url=ping_url.rstrip("/") if ping_url else None, ping_timeout=ping_timeout,
                   max_ingest_age_hours=float(max_age) if max_age is not None else None,
                   max_sync_age_hours=float(max_sync_age))


# -- [[sources]] --------------------------------------------------------------------------------------------


class ForbiddenPatterns:
    """Where a source's pattern may not reach: csvreport's own folders, and the host's system folders."""

    def __init__(self, home: Path, own: list[tuple[str, str]]) -> None:
        self.home = home
        self.own = own

    def why(self, pattern: str) -> Optional[str]:
        """Why the pattern may not be read: it can match inside csvreport's own folders or a system folder."""
        full = absolute_pattern(pattern, self.home)
        for folder, what in self.own:
            if pattern_can_reach(full, folder):
                return (f"can match files inside {folder}, csvreport's own {what} folder; point it at the folder the "
                        "exporter drops its files into")
        home = str(self.home)
        for folder in SYSTEM_FOLDERS:
            if pattern_can_reach(full, folder, skip=home):
                return (f"can match files under the system folder {folder}; csvreport never reads there (it may move "
                        "and copy what it reads): point it at the folder the exporter drops its files into")
        return None


SOURCE_KEYS = {"name", "enabled", "pattern", "timestamp", "timestamp_format", "columns", "types", "key", "delimiter",
               "encoding", "decimal", "null_values", "timezone", "move_bad_files", "follow_symlinks"}


def sources_section(problems: Problems, raw: Any, default_zone: str, forbidden: ForbiddenPatterns) -> list[Source]:
    result: list[Source] = []
    seen: set[str] = set()
    for i, where, item in entries(problems, raw, "sources", SOURCE_KEYS):
        name = _source_name(problems, item.get("name"), where, seen) or f"source{i}"
        seen.add(name)
        result.append(_source(problems, name, where, item, default_zone, forbidden))
    return result


def _source_name(problems: Problems, name: Any, where: str, seen: set[str]) -> Optional[str]:
    """The source's name (reported when it is taken or reserved), or None when it is no name at all."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.add(f"{where}.name", f"{name!r} must match [a-z][a-z0-9_]{{0,30}}")
        return None
    if name in seen:
        problems.add(f"{where}.name", f"{name!r} is used by two sources")
    elif name.startswith("sqlite_"):
        problems.add(f"{where}.name", f"{name!r} is reserved by SQLite")
    elif "__" in name:
        problems.add(f"{where}.name", f"{name!r}: '__' is reserved for the names of csvreport's indexes "
                     "(<source>__ts); use a single '_'")
    elif name in _bookkeeping_tables():
        problems.add(f"{where}.name", f"{name!r} is a table csvreport keeps for itself; choose another name")
    return name


def _source(problems: Problems, name: str, where: str, item: Mapping[str, Any], default_zone: str,
            forbidden: ForbiddenPatterns) -> Source:
    enabled = typed(problems, item, "enabled", bool, True, f"{where}.enabled")
    patterns = strings(problems, item, "pattern", f"{where}.pattern")
    if not patterns:
        problems.add(f"{where}.pattern", "is required: a glob or a list of globs")
    for pattern in patterns:
        problem = glob_problem(pattern) or forbidden.why(pattern)
        if problem:
            problems.add(f"{where}.pattern", f"{pattern!r}: {problem}")
    move_bad = typed(problems, item, "move_bad_files", bool, False, f"{where}.move_bad_files")
    follow = typed(problems, item, "follow_symlinks", bool, False, f"{where}.follow_symlinks")
    columns = strings(problems, item, "columns", f"{where}.columns", allow_single=False)
    if not columns:
        problems.add(f"{where}.columns", "is required: the list of columns to keep")
    folded: set[str] = set()
    for column in columns:
        if column_name(problems, column, f"{where}.columns") and column.casefold() in folded:
            problems.add(f"{where}.columns", f"{column!r} is listed twice (names ignore case)")
        folded.add(column.casefold())
    types: dict[str, str] = {}
    for column, kind in typed(problems, item, "types", dict, {}, f"{where}.types").items():
        if column not in columns:
            problems.add(f"{where}.types.{column}",
                         f"is not one of the source's columns{did_you_mean(column, columns)}")
        elif kind not in TYPES:
            problems.add(f"{where}.types.{column}", f"{kind!r} is not one of {', '.join(TYPES)}")
        else:
            types[column] = kind
    timestamp = strings(problems, item, "timestamp", f"{where}.timestamp")
    for column in timestamp:
        if column_name(problems, column, f"{where}.timestamp") and columns and column.casefold() not in folded:
            problems.add(f"{where}.timestamp", f"{column!r} is not one of the source's columns"
                         f"{did_you_mean(column, columns)} (an event-time column must be listed in columns too)")
    ts_format = typed(problems, item, "timestamp_format", str, None, f"{where}.timestamp_format")
    if ts_format is not None and "%" not in ts_format:
        problems.add(f"{where}.timestamp_format", f"{ts_format!r} has no strptime directive such as %Y")
    elif ts_format is not None and (wrong := _format_problem(ts_format)):
        problems.add(f"{where}.timestamp_format", f"{ts_format!r}: {wrong}")
    key = strings(problems, item, "key", f"{where}.key")
    for column in key:
        if column not in columns:
            problems.add(f"{where}.key", f"{column!r} is not one of the source's columns"
                         f"{did_you_mean(column, columns)}")
    delimiter = typed(problems, item, "delimiter", str, None, f"{where}.delimiter")
    if delimiter is not None and len(delimiter) != 1:
        problems.add(f"{where}.delimiter", f"{delimiter!r} must be one character, such as \",\" or \"\\t\"")
    encoding = typed(problems, item, "encoding", str, "utf-8", f"{where}.encoding")
    try:
        codecs.lookup(encoding)
    except LookupError:
        problems.add(f"{where}.encoding", f"unknown encoding {encoding!r}")
    decimal = typed(problems, item, "decimal", str, ".", f"{where}.decimal")
    if decimal not in (".", ","):
        problems.add(f"{where}.decimal", f"{decimal!r} must be \".\" or \",\"")
    nulls = strings(problems, item, "null_values", f"{where}.null_values", allow_single=False) \
        if "null_values" in item else ("",)
    timezone = zone(problems, item["timezone"], f"{where}.timezone") if "timezone" in item else default_zone
    return Source(
        name=name, enabled=enabled, patterns=patterns, columns=columns, types=types,
        timestamp=timestamp, timestamp_format=ts_format, key=key, delimiter=delimiter,
        encoding=encoding, decimal=decimal, null_values=frozenset(v.strip() for v in nulls),
        timezone=timezone, move_bad_files=move_bad, follow_symlinks=follow,
    )


@functools.lru_cache(maxsize=1)
def _bookkeeping_tables() -> frozenset[str]:
    """Tables the shipped migrations create: no source may take their names."""
    from importlib import resources

    names = {"schema_migrations"}
    for entry in resources.files("csvreport.migrations").iterdir():
        if entry.name.endswith(".sql"):
            names.update(re.findall(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)",
                                    entry.read_text(encoding="utf-8"), flags=re.IGNORECASE))
    return frozenset(names)


def _format_problem(fmt: str) -> Optional[str]:
    """A strptime format that can never match (a bad directive) is a configuration error."""
    from datetime import datetime

    try:
        datetime.strptime("", fmt)
    except ValueError as exc:
        if "directive" in str(exc) or "stray %" in str(exc):
            return f"{exc}; see the strptime directives (%Y %m %d %H %M %S %z ...)"
    return None


def _own_folders(home: Path, config_path: Path, paths: Paths) -> list[tuple[str, str]]:
    """The folders csvreport writes into, with their role; not one that is the home (or holds it)."""
    folders = [(config_path.parent, "configuration"), (paths.database.parent, "database"),
               (paths.reports, "reports"), (paths.quarantine, "quarantine"), (paths.logs, "logs"),
               (paths.archive, "archive")]
    result = []
    for folder, what in folders:
        for form in {os.path.normpath(folder), os.path.realpath(folder)}:
            if not (str(home) + os.sep).startswith(form.rstrip(os.sep) + os.sep):
                result.append((form, what))
    return result


# -- [[reports]] --------------------------------------------------------------------------------------------


REPORT_KEYS = {"name", "source", "group_by", "measures", "title", "chart", "total", "decimals", "limits"}


def reports_section(problems: Problems, raw: Any, sources: Mapping[str, Source]) -> list[Report]:
    result: list[Report] = []
    seen: set[str] = set()
    for i, where, item in entries(problems, raw, "reports", REPORT_KEYS):
        name = item.get("name")
        if (not isinstance(name, str) or not name.strip() or len(name) > 24
                or SHEET_FORBIDDEN & set(name) or name.startswith("'")
                or name.casefold() in ("about", "summary")):
            problems.add(f"{where}.name", f"{name!r} must be a sheet name of 1 to 24 characters, none of "
                         "[]:*?/\\ (the daily workbook adds ' by hour'), and not 'About' or 'Summary'")
            name = f"report{i}"
        elif name.casefold() in seen:
            problems.add(f"{where}.name", f"{name!r} is used by two reports")
        seen.add(name.casefold())
        source_name = item.get("source")
        source = sources.get(source_name) if isinstance(source_name, str) else None
        if source is None:
            problems.add(f"{where}.source", f"{source_name!r} is not a configured source"
                         f"{did_you_mean(source_name, sources)} (known: {', '.join(sources) or 'none'})")
        group_by = strings(problems, item, "group_by", f"{where}.group_by", allow_single=False)
        if source:
            for column in group_by:
                if column not in source.columns:
                    problems.add(f"{where}.group_by", f"{column!r} is not a column of source {source.name!r}"
                                 f"{did_you_mean(column, source.columns)}")
        measures = _measures(problems, item, where, source, group_by)
        result.append(Report(name=name, source=source.name if source else "", group_by=group_by,
                             measures=tuple(measures), **_report_reading(problems, item, where, measures)))
    return result


def _measures(problems: Problems, item: Mapping[str, Any], where: str, source: Optional[Source],
              group_by: tuple[str, ...]) -> list[Measure]:
    measures_raw = typed(problems, item, "measures", dict, {}, f"{where}.measures")
    if not measures_raw:
        problems.add(f"{where}.measures", "needs at least one measure, such as readings = \"count\"")
    measures: list[Measure] = []
    for label, spec in measures_raw.items():
        mwhere = f"{where}.measures.{label}"
        if label in group_by:
            problems.add(mwhere, "a measure label must differ from the group_by columns")
        if not label.strip() or any(ord(c) < 32 for c in label):
            problems.add(mwhere, "a measure label needs a visible character and no control characters")
        if not isinstance(spec, str):
            problems.add(mwhere, "must be \"count\" or \"count|sum|avg|min|max:column\"")
            continue
        func, _, column = spec.partition(":")
        if func not in MEASURE_FUNCS or (func != "count" and not column):
            problems.add(mwhere, f"{spec!r} must be \"count\" or \"count|sum|avg|min|max:column\"")
            continue
        if column and source:
            if column not in source.columns:
                problems.add(mwhere, f"{column!r} is not a column of source {source.name!r}"
                             f"{did_you_mean(column, source.columns)}")
                continue
            if func in ("sum", "avg") and source.type_of(column) == "text":
                problems.add(mwhere, f"{func} needs a number column; declare it in "
                             f"sources.{source.name}.types as \"real\" or \"integer\"")
        measures.append(Measure(label=label, func=func, column=column or None))
    return measures


def _report_reading(problems: Problems, item: Mapping[str, Any], where: str,
                    measures: list[Measure]) -> dict[str, Any]:
    """How a report wants to be read: title, chart, total, decimals, limits."""
    labels = [m.label for m in measures]
    known = f"(measures: {', '.join(labels) or 'none'})"
    title = typed(problems, item, "title", str, "", f"{where}.title").strip()
    if len(title) > 120 or any(ord(c) < 32 for c in title):
        problems.add(f"{where}.title", "must be one line of at most 120 characters")
    chart: Optional[str] = ""
    if "chart" in item:
        raw = item["chart"]
        if raw is False:
            chart = None
        elif isinstance(raw, str) and raw in labels:
            chart = raw
        else:
            problems.add(f"{where}.chart", f"{raw!r} must be a measure label or false {known}")
    total = typed(problems, item, "total", bool, True, f"{where}.total")
    decimals: Optional[int] = None
    per_measure: dict[str, int] = {}
    raw_decimals = item.get("decimals")
    if isinstance(raw_decimals, dict):  # [reports.decimals]: per measure label
        for label, value in raw_decimals.items():
            if label not in labels:
                problems.add(f"{where}.decimals.{label}", f"is not a measure label {known}")
            elif _decimals(problems, value, f"{where}.decimals.{label}"):
                per_measure[label] = value
    elif raw_decimals is not None and _decimals(problems, raw_decimals, f"{where}.decimals"):
        decimals = raw_decimals
    return {"title": title, "chart": chart, "total": total, "decimals": decimals,
            "measure_decimals": per_measure, "limits": _limits(problems, item, where, labels, known)}


def _limits(problems: Problems, item: Mapping[str, Any], where: str, labels: list[str],
            known: str) -> dict[str, Limit]:
    limits: dict[str, Limit] = {}
    for label, spec in typed(problems, item, "limits", dict, {}, f"{where}.limits").items():
        lwhere = f"{where}.limits.{label}"
        if label not in labels:
            problems.add(lwhere, f"is not a measure label {known}")
            continue
        if not isinstance(spec, dict) or not spec or set(spec) - {"below", "above"}:
            problems.add(lwhere, "must be a table such as { below = 10.0, above = 80.0 }")
            continue
        bounds = {k: typed(problems, spec, k, (int, float), None, f"{lwhere}.{k}") for k in ("below", "above")}
        if None not in bounds.values() and bounds["below"] >= bounds["above"]:
            problems.add(lwhere, f"below ({bounds['below']}) must be less than above ({bounds['above']})")
        limits[label] = Limit(**{k: float(v) for k, v in bounds.items() if v is not None})
    return limits


def _decimals(problems: Problems, value: Any, where: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        problems.add(where, f"{value!r} must be a whole number of decimals from 0 to 6")
        return False
    return True


# -- [email] ------------------------------------------------------------------------------------------------


EMAIL_KEYS = {"enabled", "host", "port", "security", "ca_file", "username", "sender", "hourly_to", "daily_to",
              "subject", "timeout"}


def email_section(problems: Problems, data: Mapping[str, Any], home: Path, env: Mapping[str, str]) -> Optional[Email]:
    raw = table(problems, data, "email", EMAIL_KEYS, "email", explained=frozenset({"password"}))
    if not raw:
        return None
    if "password" in raw:
        problems.add("email.password", f"secrets never go in settings.toml; set {SMTP_PASSWORD_ENV} in the "
                     "environment or in .env in the home folder")
    enabled = typed(problems, raw, "enabled", bool, True, "email.enabled")
    host = typed(problems, raw, "host", str, "", "email.host")
    security = typed(problems, raw, "security", str, "starttls", "email.security")
    if security not in ("starttls", "tls", "none"):
        problems.add("email.security", f"{security!r} must be starttls, tls or none")
    port = typed(problems, raw, "port", int, {"tls": 465, "none": 25}.get(security, 587), "email.port")
    sender = typed(problems, raw, "sender", str, "", "email.sender")
    if enabled:
        if not host:
            problems.add("email.host", "is required when email is enabled")
        if "@" not in sender:
            problems.add("email.sender", "is required when email is enabled: an address such as reports@example.com")
    hourly_to = strings(problems, raw, "hourly_to", "email.hourly_to")
    daily_to = strings(problems, raw, "daily_to", "email.daily_to")
    for key, addresses in (("hourly_to", hourly_to), ("daily_to", daily_to)):
        for address in addresses:
            if "@" not in address:
                problems.add(f"email.{key}", f"recipient {address!r} is not an email address")
    if enabled and not (hourly_to or daily_to):
        problems.add("email.hourly_to", "email is enabled but hourly_to and daily_to are both empty; "
                     "list at least one address")
    if not 0 < port < 65536:
        problems.add("email.port", f"{port} is not a TCP port (1-65535)")
    subject = typed(problems, raw, "subject", str, "{title}: {kind} report {window} ({zone})", "email.subject")
    try:
        subject.format(kind="Hourly", window="", zone="", file="", title="")
    except (KeyError, IndexError, ValueError) as exc:
        problems.add("email.subject", f"{subject!r}: bad placeholder {exc}; use {{title}}, {{kind}}, "
                     "{window}, {zone} and {file}")
    ca_file = typed(problems, raw, "ca_file", str, None, "email.ca_file")
    ca_path = in_home(home, ca_file) if ca_file else None
    if ca_path is not None and enabled and not ca_path.is_file():
        problems.add("email.ca_file", f"{ca_path} does not exist")
    return Email(
        enabled=enabled, host=host, port=port, security=security, ca_file=ca_path,
        username=typed(problems, raw, "username", str, None, "email.username"),
        password=env.get(SMTP_PASSWORD_ENV),
        sender=sender, hourly_to=hourly_to, daily_to=daily_to,
        subject=subject,
        timeout=float(typed(problems, raw, "timeout", (int, float), 30, "email.timeout")),
    )


# -- [[sharepoint]] -----------------------------------------------------------------------------------------


SHAREPOINT_KEYS = {"name", "site", "library", "folder", "pattern", "download_to", "processed_folder", "tenant_id",
                   "client_id", "certificate", "authority_host", "graph_endpoint", "timeout", "max_retry_seconds"}
SHAREPOINT_SECRETS = ("secret", "client_secret")


def sharepoint_section(problems: Problems, raw: Any, home: Path, env: Mapping[str, str]) -> list[Remote]:
    result: list[Remote] = []
    seen: set[str] = set()
    for i, where, item in entries(problems, raw, "sharepoint", SHAREPOINT_KEYS | set(SHAREPOINT_SECRETS)):
        for secret_key in SHAREPOINT_SECRETS:
            if secret_key in item:
                problems.add(f"{where}.{secret_key}", "secrets never go in settings.toml; set "
                             f"{SHAREPOINT_SECRET_ENV} in the environment or in .env in the home folder, "
                             "or use certificate = \"config/….pem\"")
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.add(f"{where}.name", f"{name!r} must match [a-z][a-z0-9_]{{0,30}}")
            name = f"remote{i}"
        elif name in seen:
            problems.add(f"{where}.name", f"{name!r} is used by two [[sharepoint]] tables")
        seen.add(name)
        result.append(_remote(problems, name, item, home, env))
    return result


def _remote(problems: Problems, name: str, item: Mapping[str, Any], home: Path, env: Mapping[str, str]) -> Remote:
    where = f"sharepoint.{name}"
    text = {key: typed(problems, item, key, str, "", f"{where}.{key}") for key in
            ("site", "library", "folder", "download_to", "processed_folder", "tenant_id", "client_id")}
    for key in ("site", "library", "download_to", "processed_folder", "tenant_id", "client_id"):
        if not text[key].strip():
            problems.add(f"{where}.{key}", "is required (see docs/sharepoint.md)")
    site = text["site"]
    if site and not re.match(r"https://[^\s/]+(/\S*)?\Z", site):
        problems.add(f"{where}.site", f"{site!r} must be the site's https URL, such as "
                     "\"https://contoso.sharepoint.com/sites/Operations\"")
    folder = text["folder"].strip("/")
    processed = text["processed_folder"].strip("/")
    if processed and processed == folder:
        problems.add(f"{where}.processed_folder", "must differ from folder: files are moved there once "
                     "downloaded, so that the next sync does not see them again")
    pattern = typed(problems, item, "pattern", str, "*.csv", f"{where}.pattern")
    if not pattern or "/" in pattern:
        problems.add(f"{where}.pattern", f"{pattern!r} must be a file name pattern such as \"*.csv\"")
    hosts = {}
    for key, default in (("authority_host", PUBLIC_AUTHORITY), ("graph_endpoint", PUBLIC_GRAPH)):
        hosts[key] = typed(problems, item, key, str, default, f"{where}.{key}").rstrip("/")
        if not re.match(r"https://[^\s/]+\Z", hosts[key]):
            problems.add(f"{where}.{key}", f"{hosts[key]!r} must be an https URL without a path, such as "
                         f"\"{default}\"")
    certificate = typed(problems, item, "certificate", str, None, f"{where}.certificate")
    timeout = float(typed(problems, item, "timeout", (int, float), 60, f"{where}.timeout"))
    max_retry = float(typed(problems, item, "max_retry_seconds", (int, float), 300, f"{where}.max_retry_seconds"))
    if timeout <= 0:
        problems.add(f"{where}.timeout", "must be more than 0 seconds")
    if max_retry < 0:
        problems.add(f"{where}.max_retry_seconds", "must be 0 or more")
    return Remote(
        name=name, site=site.rstrip("/"), library=text["library"], folder=folder,
        pattern=pattern or "*.csv", download_to=in_home(home, text["download_to"] or "."),
        processed_folder=processed, tenant_id=text["tenant_id"], client_id=text["client_id"],
        certificate=in_home(home, certificate) if certificate else None,
        secret=env.get(SHAREPOINT_SECRET_ENV) or None,
        authority_host=hosts["authority_host"], graph_endpoint=hosts["graph_endpoint"],
        timeout=timeout, max_retry_seconds=max_retry,
    )
