"""Find the home folder, read config/settings.toml and .env, validate them as a whole.

Everything is resolved once, into frozen dataclasses; every problem is reported at once,
one line each, naming the file and the key, before any command touches anything.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on old Pythons
    import tomli as tomllib

from csvreport.errors import ConfigError

HOME_ENV = "CSVREPORT_HOME"
DEFAULT_CONFIG = Path("config") / "settings.toml"
SMTP_PASSWORD_ENV = "CSVREPORT_SMTP_PASSWORD"

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

    def type_of(self, column: str) -> str:
        return self.types.get(column, "text")


@dataclass(frozen=True)
class Measure:
    label: str
    func: str  # count, sum, avg, min, max
    column: Optional[str]  # None for a plain row count


@dataclass(frozen=True)
class Report:
    name: str
    source: str
    group_by: tuple[str, ...]
    measures: tuple[Measure, ...]


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
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} in {self.config_path} (known: {known})")


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

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.file}: {key}: {message}")

    def unknown_keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for unknown in sorted(set(table) - allowed):
            key = f"{where}.{unknown}" if where else unknown
            self.problem(key, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, data: Mapping[str, Any], key: str, allowed: set[str], where: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(where, "must be a table")
            return {}
        self.unknown_keys(value, allowed, where)
        return value

    def entries(self, raw: Any, kind: str, allowed: set[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
        """The tables of an array of tables such as [[sources]], their unknown keys reported."""
        if not isinstance(raw, list):
            self.problem(kind, f"must be an array of tables ([[{kind}]])")
            return
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                self.problem(f"{kind}[{i}]", "must be a table")
                continue
            self.unknown_keys(item, allowed, f"{kind}[{i}]")
            yield i, item

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
        top = {"timezone", "paths", "ingest", "sources", "reports", "hourly", "daily", "email", "monitor"}
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
        monitor = self.table(data, "monitor", {"ping_url", "ping_timeout", "max_ingest_age_hours"}, "monitor")
        ping_url = self.typed(monitor, "ping_url", str, None, "monitor.ping_url")
        if ping_url is not None and not re.match(r"https?://[^\s/]+", ping_url):
            self.problem("monitor.ping_url", f"{ping_url!r} is not an http(s) URL")
        ping_timeout = float(self.typed(monitor, "ping_timeout", (int, float), 10, "monitor.ping_timeout"))
        max_age = self.typed(monitor, "max_ingest_age_hours", (int, float), None, "monitor.max_ingest_age_hours")
        if max_age is not None and max_age <= 0:
            self.problem("monitor.max_ingest_age_hours", "must be more than 0")

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
                   "delimiter", "encoding", "decimal", "null_values", "timezone"}
        result: list[Source] = []
        seen: set[str] = set()
        for i, item in self.entries(raw, "sources", allowed):
            where = f"sources[{i}]"
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
            where = f"sources.{name}"
            enabled = self.typed(item, "enabled", bool, True, f"{where}.enabled")
            patterns = self.strings(item, "pattern", f"{where}.pattern")
            if not patterns:
                self.problem(f"{where}.pattern", "is required: a glob or a list of globs")
            for pattern in patterns:
                problem = _glob_problem(pattern)
                if problem:
                    self.problem(f"{where}.pattern", f"{pattern!r}: {problem}")
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
                    self.problem(f"{where}.types.{column}", "is not one of the source's columns")
                elif kind not in TYPES:
                    self.problem(f"{where}.types.{column}", f"{kind!r} is not one of {', '.join(TYPES)}")
                else:
                    types[column] = kind
            timestamp = self.strings(item, "timestamp", f"{where}.timestamp")
            for column in timestamp:
                self.column_name(column, f"{where}.timestamp")
            ts_format = self.typed(item, "timestamp_format", str, None, f"{where}.timestamp_format")
            if ts_format is not None and "%" not in ts_format:
                self.problem(f"{where}.timestamp_format", f"{ts_format!r} has no strptime directive such as %Y")
            elif ts_format is not None and _format_problem(ts_format):
                self.problem(f"{where}.timestamp_format", f"{ts_format!r}: {_format_problem(ts_format)}")
            key = self.strings(item, "key", f"{where}.key")
            for column in key:
                if column not in columns:
                    self.problem(f"{where}.key", f"{column!r} is not one of the source's columns")
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
                timezone=zone,
            ))
        return result

    def reports(self, raw: Any, sources: Mapping[str, Source]) -> list[Report]:
        allowed = {"name", "source", "group_by", "measures"}
        result: list[Report] = []
        seen: set[str] = set()
        for i, item in self.entries(raw, "reports", allowed):
            where = f"reports[{i}]"
            name = item.get("name")
            if (not isinstance(name, str) or not name.strip() or len(name) > 24
                    or SHEET_FORBIDDEN & set(name) or name.startswith("'") or name.casefold() == "about"):
                self.problem(f"{where}.name", f"{name!r} must be a sheet name of 1 to 24 characters, none of "
                             "[]:*?/\\ (the daily workbook adds ' by hour'), and not 'About'")
                name = f"report{i}"
            elif name.casefold() in seen:
                self.problem(f"{where}.name", f"{name!r} is used by two reports")
            seen.add(name.casefold())
            where = f"reports.{name}"
            source_name = item.get("source")
            source = sources.get(source_name) if isinstance(source_name, str) else None
            if source is None:
                self.problem(f"{where}.source", f"{source_name!r} is not a configured source "
                             f"(known: {', '.join(sources) or 'none'})")
            group_by = self.strings(item, "group_by", f"{where}.group_by", allow_single=False)
            if source:
                for column in group_by:
                    if column not in source.columns:
                        self.problem(f"{where}.group_by", f"{column!r} is not a column of source {source.name!r}")
            measures_raw = self.typed(item, "measures", dict, {}, f"{where}.measures")
            if not measures_raw:
                self.problem(f"{where}.measures", "needs at least one measure, such as readings = \"count\"")
            measures: list[Measure] = []
            for label, spec in measures_raw.items():
                mwhere = f"{where}.measures.{label}"
                if label in group_by:
                    self.problem(mwhere, "a measure label must differ from the group_by columns")
                if not isinstance(spec, str):
                    self.problem(mwhere, "must be \"count\" or \"count|sum|avg|min|max:column\"")
                    continue
                func, _, column = spec.partition(":")
                if func not in MEASURE_FUNCS or (func != "count" and not column):
                    self.problem(mwhere, f"{spec!r} must be \"count\" or \"count|sum|avg|min|max:column\"")
                    continue
                if column and source:
                    if column not in source.columns:
                        self.problem(mwhere, f"{column!r} is not a column of source {source.name!r}")
                        continue
                    if func in ("sum", "avg") and source.type_of(column) == "text":
                        self.problem(mwhere, f"{func} needs a number column; declare it in "
                                     f"sources.{source.name}.types as \"real\" or \"integer\"")
                measures.append(Measure(label=label, func=func, column=column or None))
            result.append(Report(name=name, source=source.name if source else "",
                                 group_by=group_by, measures=tuple(measures)))
        return result

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
        subject = self.typed(raw, "subject", str, "{kind} report {window} ({zone})", "email.subject")
        try:
            subject.format(kind="Hourly", window="", zone="", file="")
        except (KeyError, IndexError, ValueError) as exc:
            self.problem("email.subject", f"{subject!r}: bad placeholder {exc}; use {{kind}}, {{window}}, "
                         "{zone} and {file}")
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


def _glob_problem(pattern: str) -> Optional[str]:
    if not pattern.strip():
        return "is empty"
    if "\x00" in pattern:
        return "contains a NUL character"
    depth = 0
    for ch in pattern:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
    if depth:
        return "has a '[' without its ']'"
    for part in re.split(r"[\\/]", pattern):
        if "**" in part and part != "**":
            return "'**' must be a whole path component, as in inbox/**/*.csv"
    return None
