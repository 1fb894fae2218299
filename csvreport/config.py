"""Find the home folder, read config/settings.toml and .env, validate them as a whole.

Everything is resolved once, into frozen dataclasses; every problem is reported at once,
one line each, naming the file and the key, before any command touches anything.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on old Pythons
    import tomli as tomllib

from csvreport.errors import ConfigError
from csvreport.patterns import SYSTEM_FOLDERS, glob_problem
from csvreport.patterns import pattern_can_reach as pattern_can_reach  # imported from here elsewhere
from csvreport.patterns import pattern_folder as pattern_folder

HOME_ENV = "CSVREPORT_HOME"
DEFAULT_CONFIG = Path("config") / "settings.toml"
SMTP_PASSWORD_ENV = "CSVREPORT_SMTP_PASSWORD"
SHAREPOINT_SECRET_ENV = "CSVREPORT_SHAREPOINT_SECRET"
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
PUBLIC_GRAPH = "https://graph.microsoft.com"

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,30}\Z")
SLOT_RE = re.compile(r"([01][0-9]|2[0-4]):([0-5][0-9])\Z")
TYPES = ("text", "integer", "real")
MEASURE_FUNCS = ("count", "sum", "avg", "min", "max")
SHEET_FORBIDDEN = set("[]:*?/\\")
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class Paths:
    database: Path
    reports: Path
    quarantine: Path
    logs: Path
    archive: Path


@dataclass(frozen=True)
class Source:
    name: str
    enabled: bool
    patterns: tuple[str, ...]
    columns: tuple[str, ...]
    types: Mapping[str, str]
    timestamp: tuple[str, ...] = ()
    timestamp_format: Optional[str] = None
    key: tuple[str, ...] = ()
    delimiter: Optional[str] = None
    encoding: str = "utf-8"
    decimal: str = "."
    null_values: frozenset = frozenset({""})
    timezone: str = "UTC"
    move_bad_files: bool = False  # may a bad file outside the home be moved (not only copied) to quarantine?
    follow_symlinks: bool = False  # may a matched symbolic link be read?

    def type_of(self, column: str) -> str:
        return self.types.get(column, "text")


@dataclass(frozen=True)
class Measure:
    label: str
    func: str  # count, sum, avg, min, max
    column: Optional[str]  # None for a plain row count


@dataclass(frozen=True)
class Limit:
    """A measure's normal range: a value below `below` or above `above` is highlighted."""

    below: Optional[float] = None
    above: Optional[float] = None

    def outside(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            return False
        return (self.below is not None and value < self.below) or (self.above is not None and value > self.above)


DEFAULT_DECIMALS = 2


@dataclass(frozen=True)
class Report:
    name: str
    source: str
    group_by: tuple[str, ...]
    measures: tuple[Measure, ...]
    title: str = ""  # empty: the name
    chart: Optional[str] = ""  # a measure label; "": the default measure; None: no chart
    total: bool = True
    decimals: Optional[int] = None  # the report's default for sum/avg/min/max values
    measure_decimals: Mapping[str, int] = field(default_factory=dict)
    limits: Mapping[str, Limit] = field(default_factory=dict)

    @property
    def heading(self) -> str:
        """What people read: the title, or the name when there is none."""
        return self.title or self.name

    @property
    def chart_measure(self) -> Optional[Measure]:
        """The measure charted by hour: as configured, else the first that is not a count."""
        if self.chart is None or not self.measures:
            return None
        for measure in self.measures:
            if measure.label == self.chart:
                return measure
        return next((m for m in self.measures if m.func != "count"), self.measures[0])

    def decimals_of(self, measure: Measure, column_type: str = "real") -> int:
        """Fixed decimals of a measure's values: counts and sums of whole numbers have none."""
        if measure.func == "count":
            return 0
        if measure.label in self.measure_decimals:
            return self.measure_decimals[measure.label]
        if column_type == "integer" and measure.func != "avg":
            return 0
        return DEFAULT_DECIMALS if self.decimals is None else self.decimals


def title_of(reports: tuple[Report, ...] | list[Report]) -> str:
    """A workbook's title: its reports' titles (mail subjects, document properties)."""
    return ", ".join(r.heading for r in reports) or "csvreport"


@dataclass(frozen=True)
class Email:
    enabled: bool
    host: str
    port: int
    security: str  # starttls | tls | none
    ca_file: Optional[Path]
    username: Optional[str]
    password: Optional[str] = field(repr=False)
    sender: str
    hourly_to: tuple[str, ...]
    daily_to: tuple[str, ...]
    subject: str
    timeout: float


@dataclass(frozen=True)
class Remote:
    """A [[sharepoint]] table: one folder of a document library that `sync` pulls from."""

    name: str
    site: str
    library: str
    folder: str
    pattern: str
    download_to: Path
    processed_folder: str
    tenant_id: str
    client_id: str
    certificate: Path | None
    secret: str | None = field(repr=False)
    authority_host: str = PUBLIC_AUTHORITY
    graph_endpoint: str = PUBLIC_GRAPH
    timeout: float = 60.0
    max_retry_seconds: float = 300.0


@dataclass(frozen=True)
class Settings:
    home: Path
    config_path: Path
    timezone: str
    paths: Paths
    settle_seconds: float
    max_bad_rows: int
    sources: tuple[Source, ...]
    reports: tuple[Report, ...]
    catch_up_hours: int
    daily_slots: tuple[str, ...]
    email: Optional[Email] = None
    ping_url: Optional[str] = None
    ping_timeout: float = 10.0
    max_ingest_age_hours: Optional[float] = None
    remotes: tuple[Remote, ...] = ()
    max_sync_age_hours: float = 6.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def stored_path(self, path: Path) -> str:
        """A file's path as the database keeps it: relative to the home when inside it, so that a
        home moved or copied elsewhere still finds its files; absolute when outside it."""
        try:
            return str(Path(path).relative_to(self.home))
        except ValueError:
            return str(path)

    def from_stored(self, stored: str) -> Path:
        """The file a stored path names (an absolute one is itself)."""
        return self.home / stored

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} in {self.config_path}"
                          f"{did_you_mean(name, [s.name for s in self.sources])} (known: {known})")

    def remote(self, name: str) -> Remote:
        for r in self.remotes:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.remotes) or "none"
        raise ConfigError(f"--remote {name}: no [[sharepoint]] table named {name!r} in {self.config_path} "
                          f"(known: {known})")


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`; did you mean 'ts'?` when one of `choices` is close to `word` (a typo), else ""."""
    if not isinstance(word, str):
        return ""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:  # case or spacing only: 'TS' for 'ts'
        close = [c for c in options if c.strip().casefold() == word.strip().casefold()][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def resolve_home(home: Optional[str | Path]) -> Path:
    """--home wins, then CSVREPORT_HOME, then the current directory."""
    chosen = home or os.environ.get(HOME_ENV) or os.getcwd()
    return Path(chosen).expanduser().resolve()


def read_dotenv(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of `.env`, read by python-dotenv; nothing when there is no such file.

    Values are taken literally (no ${VAR} expansion): a password may contain a dollar sign.
    A line without `=` sets nothing.
    """
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # only hosts that keep secrets in .env pay for the import

    try:
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except PermissionError:
        # Kept from a monitoring user on purpose (it holds secrets); `status` needs none of them, and a
        # writing command run by such a user cannot write the database either and says so.
        return {}
    return {k: v for k, v in values.items() if v is not None}


def load_settings(home: Optional[str | Path] = None, config: Optional[str | Path] = None) -> Settings:
    home_path = resolve_home(home)
    config_path = Path(config).expanduser() if config else home_path / DEFAULT_CONFIG
    if not config_path.is_absolute():
        config_path = (Path.cwd() / config_path) if config else (home_path / config_path)
    if not config_path.is_file() and config:
        raise ConfigError(f"{config_path}: configuration not found; check the path given to --config")
    if not config_path.is_file():
        raise ConfigError(
            f"{config_path}: configuration not found; create it (csvreport init {home_path}) "
            f"or point --home / {HOME_ENV} at the home folder"
        )
    try:
        with open(config_path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    env = dict(read_dotenv(home_path / ".env"))
    env.update(os.environ)
    return _Parser(config_path, home_path, env).settings(data)


class _Parser:
    """Collects every problem of one settings file before raising them together."""

    def __init__(self, config_path: Path, home: Path, env: Mapping[str, str]):
        self.file = config_path
        self.home = home
        self.env = env
        self.problems: list[str] = []
        self.own: list[tuple[str, str]] = []

    def forbidden(self, pattern: str) -> Optional[str]:
        """Why the pattern may not be read: it can match inside csvreport's own folders or a system folder."""
        full = os.path.expanduser(pattern)
        full = full if os.path.isabs(full) else os.path.join(self.home, full)
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

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.file}: {key}: {message}")

    def unknown_keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for unknown in sorted(set(table) - allowed):
            key = f"{where}.{unknown}" if where else unknown
            self.problem(key, f"unknown key{did_you_mean(unknown, sorted(allowed))} "
                              f"(allowed: {', '.join(sorted(allowed))})")

    def table(self, data: Mapping[str, Any], key: str, allowed: set[str], where: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(where, "must be a table")
            return {}
        self.unknown_keys(value, allowed, where)
        return value

    def entries(self, raw: Any, kind: str, allowed: set[str]) -> Iterator[tuple[int, str, Mapping[str, Any]]]:
        """The tables of an array of tables such as [[sources]], each with the name problems call it by
        (`sources.sensors`; `sources[2]`, the third, when it has no name), their unknown keys reported."""
        if not isinstance(raw, list):
            self.problem(kind, f"must be an array of tables ([[{kind}]])")
            return
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                self.problem(f"{kind}[{i}]", "must be a table")
                continue
            name = item.get("name")
            where = f"{kind}.{name}" if isinstance(name, str) and name.strip() else f"{kind}[{i}]"
            self.unknown_keys(item, allowed, where)
            yield i, where, item

    def typed(self, data: Mapping[str, Any], key: str, kind: type | tuple, default: Any, where: str) -> Any:
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.problem(where, f"must be a number, not {value!r}")
            return default
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.problem(where, f"must be of type {names}, not {type(value).__name__} {value!r}")
            return default
        return value

    def strings(self, data: Mapping[str, Any], key: str, where: str, allow_single: bool = True) -> tuple[str, ...]:
        if key not in data:
            return ()
        value = data[key]
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(where, "must be a list of strings" + (" or a string" if allow_single else ""))
            return ()
        return tuple(value)

    def zone(self, name: Any, where: str) -> str:
        if not isinstance(name, str):
            self.problem(where, "must be a time zone name such as \"Europe/Berlin\"")
            return "UTC"
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(where, f"unknown time zone {name!r} (use an IANA name such as \"Europe/Berlin\")")
            return "UTC"
        return name

    def path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.home / path

    def settings(self, data: Mapping[str, Any]) -> Settings:
        top = {"timezone", "paths", "ingest", "sources", "reports", "hourly", "daily", "email", "monitor",
               "sharepoint"}
        self.unknown_keys(data, top, "")
        timezone = self.zone(data.get("timezone", "UTC"), "timezone")

        raw_paths = self.table(data, "paths", {"database", "reports", "quarantine", "logs", "archive"}, "paths")
        defaults = {
            "database": "data/csvreport.sqlite3",
            "reports": "reports",
            "quarantine": "quarantine",
            "logs": "logs",
            "archive": "archive",
        }
        resolved = {k: self.path(self.typed(raw_paths, k, str, d, f"paths.{k}")) for k, d in defaults.items()}
        paths = Paths(**resolved)
        self.own = _own_folders(self.home, self.file, paths)

        ingest = self.table(data, "ingest", {"settle_seconds", "max_bad_rows"}, "ingest")
        settle = self.typed(ingest, "settle_seconds", (int, float), 30, "ingest.settle_seconds")
        if settle < 0:
            self.problem("ingest.settle_seconds", "must be 0 or more")
        max_bad = self.typed(ingest, "max_bad_rows", int, 0, "ingest.max_bad_rows")
        if max_bad < 0:
            self.problem("ingest.max_bad_rows", "must be 0 or more")

        sources = self.sources(data.get("sources", []), timezone)
        reports = self.reports(data.get("reports", []), {s.name: s for s in sources})

        hourly = self.table(data, "hourly", {"catch_up_hours"}, "hourly")
        catch_up = self.typed(hourly, "catch_up_hours", int, 24, "hourly.catch_up_hours")
        if not 1 <= catch_up <= 24 * 31:
            self.problem("hourly.catch_up_hours", "must be between 1 and 744")

        daily = self.table(data, "daily", {"slots"}, "daily")
        slots = self.strings(daily, "slots", "daily.slots", allow_single=False) if "slots" in daily else (
            "06:00", "12:00", "18:00", "24:00")
        for slot in slots:
            m = SLOT_RE.match(slot)
            if not m or slot > "24:00" or slot == "00:00":
                self.problem("daily.slots", f"{slot!r} is not a time from \"00:01\" to \"24:00\" (HH:MM)")
        slots = tuple(sorted(set(slots)))

        email = self.email(data)
        monitor = self.table(data, "monitor", {"ping_url", "ping_timeout", "max_ingest_age_hours",
                                               "max_sync_age_hours"}, "monitor")
        ping_url = self.typed(monitor, "ping_url", str, None, "monitor.ping_url")
        if ping_url is not None and not re.match(r"https?://[^\s/]+", ping_url):
            self.problem("monitor.ping_url", f"{ping_url!r} is not an http(s) URL")
        ping_timeout = float(self.typed(monitor, "ping_timeout", (int, float), 10, "monitor.ping_timeout"))
        max_age = self.typed(monitor, "max_ingest_age_hours", (int, float), None, "monitor.max_ingest_age_hours")
        if max_age is not None and max_age <= 0:
            self.problem("monitor.max_ingest_age_hours", "must be more than 0")
        max_sync_age = self.typed(monitor, "max_sync_age_hours", (int, float), 6, "monitor.max_sync_age_hours")
        if max_sync_age <= 0:
            self.problem("monitor.max_sync_age_hours", "must be more than 0")
        remotes = self.remotes(data.get("sharepoint", []))

        if self.problems:
            raise ConfigError("configuration is not valid:\n" + "\n".join(self.problems))
        return Settings(
            home=self.home,
            config_path=self.file,
            timezone=timezone,
            paths=paths,
            settle_seconds=float(settle),
            max_bad_rows=max_bad,
            sources=tuple(sources),
            reports=tuple(reports),
            catch_up_hours=catch_up,
            daily_slots=slots,
            email=email,
            ping_url=ping_url.rstrip("/") if ping_url else None,
            ping_timeout=ping_timeout,
            max_ingest_age_hours=float(max_age) if max_age is not None else None,
            remotes=tuple(remotes),
            max_sync_age_hours=float(max_sync_age),
            env=dict(self.env),
        )

    def column_name(self, name: Any, where: str) -> bool:
        if not isinstance(name, str) or not name.strip():
            self.problem(where, f"{name!r} is not a column name")
            return False
        if name != name.strip() or name.startswith("_") or any(ord(c) < 32 for c in name):
            self.problem(where, f"column name {name!r} must not start with '_' or a space, "
                                "nor contain control characters")
            return False
        return True

    def sources(self, raw: Any, default_zone: str) -> list[Source]:
        allowed = {"name", "enabled", "pattern", "timestamp", "timestamp_format", "columns", "types", "key",
                   "delimiter", "encoding", "decimal", "null_values", "timezone", "move_bad_files",
                   "follow_symlinks"}
        result: list[Source] = []
        seen: set[str] = set()
        for i, where, item in self.entries(raw, "sources", allowed):
            name = item.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.problem(f"{where}.name", f"{name!r} must match [a-z][a-z0-9_]{{0,30}}")
                name = f"source{i}"
            elif name in seen:
                self.problem(f"{where}.name", f"{name!r} is used by two sources")
            elif name.startswith("sqlite_"):
                self.problem(f"{where}.name", f"{name!r} is reserved by SQLite")
            elif "__" in name:
                self.problem(f"{where}.name", f"{name!r}: '__' is reserved for the names of csvreport's indexes "
                             "(<source>__ts); use a single '_'")
            elif name in _bookkeeping_tables():
                self.problem(f"{where}.name", f"{name!r} is a table csvreport keeps for itself; choose another name")
            seen.add(name)
            enabled = self.typed(item, "enabled", bool, True, f"{where}.enabled")
            patterns = self.strings(item, "pattern", f"{where}.pattern")
            if not patterns:
                self.problem(f"{where}.pattern", "is required: a glob or a list of globs")
            for pattern in patterns:
                problem = glob_problem(pattern) or self.forbidden(pattern)
                if problem:
                    self.problem(f"{where}.pattern", f"{pattern!r}: {problem}")
            move_bad = self.typed(item, "move_bad_files", bool, False, f"{where}.move_bad_files")
            follow = self.typed(item, "follow_symlinks", bool, False, f"{where}.follow_symlinks")
            columns = self.strings(item, "columns", f"{where}.columns", allow_single=False)
            if not columns:
                self.problem(f"{where}.columns", "is required: the list of columns to keep")
            folded: set[str] = set()
            for column in columns:
                if self.column_name(column, f"{where}.columns") and column.casefold() in folded:
                    self.problem(f"{where}.columns", f"{column!r} is listed twice (names ignore case)")
                folded.add(column.casefold())
            types_raw = self.typed(item, "types", dict, {}, f"{where}.types")
            types: dict[str, str] = {}
            for column, kind in types_raw.items():
                if column not in columns:
                    self.problem(f"{where}.types.{column}",
                                 f"is not one of the source's columns{did_you_mean(column, columns)}")
                elif kind not in TYPES:
                    self.problem(f"{where}.types.{column}", f"{kind!r} is not one of {', '.join(TYPES)}")
                else:
                    types[column] = kind
            timestamp = self.strings(item, "timestamp", f"{where}.timestamp")
            for column in timestamp:
                if self.column_name(column, f"{where}.timestamp") and columns and column.casefold() not in folded:
                    self.problem(f"{where}.timestamp", f"{column!r} is not one of the source's columns"
                                 f"{did_you_mean(column, columns)} (an event-time column must be listed in columns "
                                 "too)")
            ts_format = self.typed(item, "timestamp_format", str, None, f"{where}.timestamp_format")
            if ts_format is not None and "%" not in ts_format:
                self.problem(f"{where}.timestamp_format", f"{ts_format!r} has no strptime directive such as %Y")
            elif ts_format is not None and _format_problem(ts_format):
                self.problem(f"{where}.timestamp_format", f"{ts_format!r}: {_format_problem(ts_format)}")
            key = self.strings(item, "key", f"{where}.key")
            for column in key:
                if column not in columns:
                    self.problem(f"{where}.key", f"{column!r} is not one of the source's columns"
                                 f"{did_you_mean(column, columns)}")
            delimiter = self.typed(item, "delimiter", str, None, f"{where}.delimiter")
            if delimiter is not None and len(delimiter) != 1:
                self.problem(f"{where}.delimiter", f"{delimiter!r} must be one character, such as \",\" or \"\\t\"")
            encoding = self.typed(item, "encoding", str, "utf-8", f"{where}.encoding")
            try:
                import codecs

                codecs.lookup(encoding)
            except LookupError:
                self.problem(f"{where}.encoding", f"unknown encoding {encoding!r}")
            decimal = self.typed(item, "decimal", str, ".", f"{where}.decimal")
            if decimal not in (".", ","):
                self.problem(f"{where}.decimal", f"{decimal!r} must be \".\" or \",\"")
            nulls = self.strings(item, "null_values", f"{where}.null_values", allow_single=False) \
                if "null_values" in item else ("",)
            zone = self.zone(item["timezone"], f"{where}.timezone") if "timezone" in item else default_zone
            result.append(Source(
                name=name, enabled=enabled, patterns=patterns, columns=columns, types=types,
                timestamp=timestamp, timestamp_format=ts_format, key=key, delimiter=delimiter,
                encoding=encoding, decimal=decimal, null_values=frozenset(v.strip() for v in nulls),
                timezone=zone, move_bad_files=move_bad, follow_symlinks=follow,
            ))
        return result

    def reports(self, raw: Any, sources: Mapping[str, Source]) -> list[Report]:
        allowed = {"name", "source", "group_by", "measures", "title", "chart", "total", "decimals", "limits"}
        result: list[Report] = []
        seen: set[str] = set()
        for i, where, item in self.entries(raw, "reports", allowed):
            name = item.get("name")
            if (not isinstance(name, str) or not name.strip() or len(name) > 24
                    or SHEET_FORBIDDEN & set(name) or name.startswith("'")
                    or name.casefold() in ("about", "summary")):
                self.problem(f"{where}.name", f"{name!r} must be a sheet name of 1 to 24 characters, none of "
                             "[]:*?/\\ (the daily workbook adds ' by hour'), and not 'About' or 'Summary'")
                name = f"report{i}"
            elif name.casefold() in seen:
                self.problem(f"{where}.name", f"{name!r} is used by two reports")
            seen.add(name.casefold())
            source_name = item.get("source")
            source = sources.get(source_name) if isinstance(source_name, str) else None
            if source is None:
                self.problem(f"{where}.source", f"{source_name!r} is not a configured source"
                             f"{did_you_mean(source_name, sources)} (known: {', '.join(sources) or 'none'})")
            group_by = self.strings(item, "group_by", f"{where}.group_by", allow_single=False)
            if source:
                for column in group_by:
                    if column not in source.columns:
                        self.problem(f"{where}.group_by", f"{column!r} is not a column of source {source.name!r}"
                                     f"{did_you_mean(column, source.columns)}")
            measures = self.measures(item, where, source, group_by)
            result.append(Report(name=name, source=source.name if source else "", group_by=group_by,
                                 measures=tuple(measures), **self.report_reading(item, where, measures)))
        return result

    def measures(self, item: Mapping[str, Any], where: str, source: Optional[Source],
                 group_by: tuple[str, ...]) -> list[Measure]:
        measures_raw = self.typed(item, "measures", dict, {}, f"{where}.measures")
        if not measures_raw:
            self.problem(f"{where}.measures", "needs at least one measure, such as readings = \"count\"")
        measures: list[Measure] = []
        for label, spec in measures_raw.items():
            mwhere = f"{where}.measures.{label}"
            if label in group_by:
                self.problem(mwhere, "a measure label must differ from the group_by columns")
            if not label.strip() or any(ord(c) < 32 for c in label):
                self.problem(mwhere, "a measure label needs a visible character and no control characters")
            if not isinstance(spec, str):
                self.problem(mwhere, "must be \"count\" or \"count|sum|avg|min|max:column\"")
                continue
            func, _, column = spec.partition(":")
            if func not in MEASURE_FUNCS or (func != "count" and not column):
                self.problem(mwhere, f"{spec!r} must be \"count\" or \"count|sum|avg|min|max:column\"")
                continue
            if column and source:
                if column not in source.columns:
                    self.problem(mwhere, f"{column!r} is not a column of source {source.name!r}"
                                 f"{did_you_mean(column, source.columns)}")
                    continue
                if func in ("sum", "avg") and source.type_of(column) == "text":
                    self.problem(mwhere, f"{func} needs a number column; declare it in "
                                 f"sources.{source.name}.types as \"real\" or \"integer\"")
            measures.append(Measure(label=label, func=func, column=column or None))
        return measures

    def report_reading(self, item: Mapping[str, Any], where: str, measures: list[Measure]) -> dict[str, Any]:
        """How a report wants to be read: title, chart, total, decimals, limits."""
        labels = [m.label for m in measures]
        known = f"(measures: {', '.join(labels) or 'none'})"
        title = self.typed(item, "title", str, "", f"{where}.title").strip()
        if len(title) > 120 or any(ord(c) < 32 for c in title):
            self.problem(f"{where}.title", "must be one line of at most 120 characters")
        chart: Optional[str] = ""
        if "chart" in item:
            raw = item["chart"]
            if raw is False:
                chart = None
            elif isinstance(raw, str) and raw in labels:
                chart = raw
            else:
                self.problem(f"{where}.chart", f"{raw!r} must be a measure label or false {known}")
        total = self.typed(item, "total", bool, True, f"{where}.total")
        decimals: Optional[int] = None
        per_measure: dict[str, int] = {}
        raw_decimals = item.get("decimals")
        if isinstance(raw_decimals, dict):  # [reports.decimals]: per measure label
            for label, value in raw_decimals.items():
                if label not in labels:
                    self.problem(f"{where}.decimals.{label}", f"is not a measure label {known}")
                elif self._decimals(value, f"{where}.decimals.{label}"):
                    per_measure[label] = value
        elif raw_decimals is not None and self._decimals(raw_decimals, f"{where}.decimals"):
            decimals = raw_decimals
        limits: dict[str, Limit] = {}
        for label, spec in self.typed(item, "limits", dict, {}, f"{where}.limits").items():
            lwhere = f"{where}.limits.{label}"
            if label not in labels:
                self.problem(lwhere, f"is not a measure label {known}")
                continue
            if not isinstance(spec, dict) or not spec or set(spec) - {"below", "above"}:
                self.problem(lwhere, "must be a table such as { below = 10.0, above = 80.0 }")
                continue
            bounds = {k: self.typed(spec, k, (int, float), None, f"{lwhere}.{k}") for k in ("below", "above")}
            if None not in bounds.values() and bounds["below"] >= bounds["above"]:
                self.problem(lwhere, f"below ({bounds['below']}) must be less than above ({bounds['above']})")
            limits[label] = Limit(**{k: float(v) for k, v in bounds.items() if v is not None})
        return {"title": title, "chart": chart, "total": total, "decimals": decimals,
                "measure_decimals": per_measure, "limits": limits}

    def _decimals(self, value: Any, where: str) -> bool:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
            self.problem(where, f"{value!r} must be a whole number of decimals from 0 to 6")
            return False
        return True

    def email(self, data: Mapping[str, Any]) -> Optional[Email]:
        allowed = {"enabled", "host", "port", "security", "ca_file", "username", "sender", "hourly_to",
                   "daily_to", "subject", "timeout"}
        raw = self.table(data, "email", allowed, "email")
        if not raw:
            return None
        if "password" in raw:
            # replace the generic unknown-key line with the reason
            self.problems = [p for p in self.problems if "email.password: unknown key" not in p]
            self.problem("email.password", f"secrets never go in settings.toml; set {SMTP_PASSWORD_ENV} in the "
                         "environment or in .env in the home folder")
        enabled = self.typed(raw, "enabled", bool, True, "email.enabled")
        host = self.typed(raw, "host", str, "", "email.host")
        security = self.typed(raw, "security", str, "starttls", "email.security")
        if security not in ("starttls", "tls", "none"):
            self.problem("email.security", f"{security!r} must be starttls, tls or none")
        port = self.typed(raw, "port", int, {"tls": 465, "none": 25}.get(security, 587), "email.port")
        sender = self.typed(raw, "sender", str, "", "email.sender")
        if enabled:
            if not host:
                self.problem("email.host", "is required when email is enabled")
            if "@" not in sender:
                self.problem("email.sender",
                             "is required when email is enabled: an address such as reports@example.com")
        hourly_to = self.strings(raw, "hourly_to", "email.hourly_to")
        daily_to = self.strings(raw, "daily_to", "email.daily_to")
        for key, addresses in (("hourly_to", hourly_to), ("daily_to", daily_to)):
            for address in addresses:
                if "@" not in address:
                    self.problem(f"email.{key}", f"recipient {address!r} is not an email address")
        if enabled and not (hourly_to or daily_to):
            self.problem("email.hourly_to", "email is enabled but hourly_to and daily_to are both empty; "
                         "list at least one address")
        if not 0 < port < 65536:
            self.problem("email.port", f"{port} is not a TCP port (1-65535)")
        subject = self.typed(raw, "subject", str, "{title}: {kind} report {window} ({zone})", "email.subject")
        try:
            subject.format(kind="Hourly", window="", zone="", file="", title="")
        except (KeyError, IndexError, ValueError) as exc:
            self.problem("email.subject", f"{subject!r}: bad placeholder {exc}; use {{title}}, {{kind}}, "
                         "{window}, {zone} and {file}")
        ca_file = self.typed(raw, "ca_file", str, None, "email.ca_file")
        ca_path = self.path(ca_file) if ca_file else None
        if ca_path is not None and enabled and not ca_path.is_file():
            self.problem("email.ca_file", f"{ca_path} does not exist")
        return Email(
            enabled=enabled, host=host, port=port, security=security, ca_file=ca_path,
            username=self.typed(raw, "username", str, None, "email.username"),
            password=self.env.get(SMTP_PASSWORD_ENV),
            sender=sender, hourly_to=hourly_to, daily_to=daily_to,
            subject=subject,
            timeout=float(self.typed(raw, "timeout", (int, float), 30, "email.timeout")),
        )


    def remotes(self, raw: Any) -> list[Remote]:
        allowed = {"name", "site", "library", "folder", "pattern", "download_to", "processed_folder", "tenant_id",
                   "client_id", "certificate", "authority_host", "graph_endpoint", "timeout", "max_retry_seconds"}
        result: list[Remote] = []
        seen: set[str] = set()
        for i, where, item in self.entries(raw, "sharepoint", allowed | {"secret", "client_secret"}):
            for secret_key in ("secret", "client_secret"):
                if secret_key in item:
                    self.problem(f"{where}.{secret_key}", "secrets never go in settings.toml; set "
                                 f"{SHAREPOINT_SECRET_ENV} in the environment or in .env in the home folder, "
                                 "or use certificate = \"config/….pem\"")
            name = item.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.problem(f"{where}.name", f"{name!r} must match [a-z][a-z0-9_]{{0,30}}")
                name = f"remote{i}"
            elif name in seen:
                self.problem(f"{where}.name", f"{name!r} is used by two [[sharepoint]] tables")
            seen.add(name)
            where = f"sharepoint.{name}"
            text = {key: self.typed(item, key, str, "", f"{where}.{key}") for key in
                    ("site", "library", "folder", "download_to", "processed_folder", "tenant_id", "client_id")}
            for key in ("site", "library", "download_to", "processed_folder", "tenant_id", "client_id"):
                if not text[key].strip():
                    self.problem(f"{where}.{key}", "is required (see docs/sharepoint.md)")
            site = text["site"]
            if site and not re.match(r"https://[^\s/]+(/\S*)?\Z", site):
                self.problem(f"{where}.site", f"{site!r} must be the site's https URL, such as "
                             "\"https://contoso.sharepoint.com/sites/Operations\"")
            folder = text["folder"].strip("/")
            processed = text["processed_folder"].strip("/")
            if processed and processed == folder:
                self.problem(f"{where}.processed_folder", "must differ from folder: files are moved there once "
                             "downloaded, so that the next sync does not see them again")
            pattern = self.typed(item, "pattern", str, "*.csv", f"{where}.pattern")
            if not pattern or "/" in pattern:
                self.problem(f"{where}.pattern", f"{pattern!r} must be a file name pattern such as \"*.csv\"")
            hosts = {}
            for key, default in (("authority_host", PUBLIC_AUTHORITY), ("graph_endpoint", PUBLIC_GRAPH)):
                hosts[key] = self.typed(item, key, str, default, f"{where}.{key}").rstrip("/")
                if not re.match(r"https://[^\s/]+\Z", hosts[key]):
                    self.problem(f"{where}.{key}", f"{hosts[key]!r} must be an https URL without a path, such as "
                                 f"\"{default}\"")
            certificate = self.typed(item, "certificate", str, None, f"{where}.certificate")
            timeout = float(self.typed(item, "timeout", (int, float), 60, f"{where}.timeout"))
            max_retry = float(self.typed(item, "max_retry_seconds", (int, float), 300, f"{where}.max_retry_seconds"))
            if timeout <= 0:
                self.problem(f"{where}.timeout", "must be more than 0 seconds")
            if max_retry < 0:
                self.problem(f"{where}.max_retry_seconds", "must be 0 or more")
            result.append(Remote(
                name=name, site=site.rstrip("/"), library=text["library"], folder=folder,
                pattern=pattern or "*.csv", download_to=self.path(text["download_to"] or "."),
                processed_folder=processed, tenant_id=text["tenant_id"], client_id=text["client_id"],
                certificate=self.path(certificate) if certificate else None,
                secret=self.env.get(SHAREPOINT_SECRET_ENV) or None,
                authority_host=hosts["authority_host"], graph_endpoint=hosts["graph_endpoint"],
                timeout=timeout, max_retry_seconds=max_retry,
            ))
        return result


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
