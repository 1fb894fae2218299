"""Find the home folder, read config/settings.toml and .env, validate them as a whole.

Everything is resolved once, into the frozen dataclasses below; every problem is reported at
once, one line each, naming the file and the key, before any command touches anything.
config_parse.py holds the validators, one per section of the file.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on old Pythons
    import tomli as tomllib

from csvreport.errors import ConfigError
from csvreport.patterns import pattern_can_reach as pattern_can_reach  # imported from here elsewhere

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

    def stored_path(self, path: Path | str) -> str:
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
        return _named(self.sources, name, f"no source named {name!r} in {self.config_path}")

    def remote(self, name: str) -> Remote:
        return _named(self.remotes, name,
                      f"--remote {name}: no [[sharepoint]] table named {name!r} in {self.config_path}")


_Named = TypeVar("_Named", Source, Remote)


def _named(items: Sequence[_Named], name: str, missing: str) -> _Named:
    """The item called `name`, or a ConfigError: `missing`, a close match if any, and the known names."""
    for item in items:
        if item.name == name:
            return item
    names = [item.name for item in items]
    raise ConfigError(f"{missing}{did_you_mean(name, names)} (known: {', '.join(names) or 'none'})")


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
    from csvreport.config_parse import parse_settings  # it builds the dataclasses above

    return parse_settings(data, config_path, home_path, env)
