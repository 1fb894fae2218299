"""The command line: option declarations that forward to one library function each.

Only this module turns a CsvReportError into `Error: …` on stderr and its exit code.

The global options (`--home`, `--config`, `--quiet`, `--log-format`) are declared once, on
the top-level callback; `_Group` gives every command and subcommand a copy, so they work
before or after a command's name, and each command's --help lists them.
"""

from __future__ import annotations

import copy
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from csvreport import __version__, db, log
from csvreport.config import Settings, load_settings
from csvreport.errors import ConfigError, CsvReportError

# Typer's own usage errors (a ClickException, wherever Typer takes click from) pass through untouched.
_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

GLOBAL_PANEL = "Global options"
# Shared with every command. `help` is one of them so that click adds no `-h, --help <bool>` of its own.
_GLOBAL_NAMES = {"home", "config", "quiet", "log_format", "help"}
_GIVEN = "csvreport.global_options"  # the key in click's ctx.meta, which every context of one run shares


_DIGITS = {int: re.compile(r"[0-9]+"), float: re.compile(r"[0-9]+(?:\.[0-9]+)?")}
_PATH_CHECKS = ("exists", "resolve_path", "allow_dash", "path_type")


class _PlainValues:
    """Typer's coercion of a parameter's value, without Pydantic where the value needs no conversion.

    Typer builds a Pydantic type adapter for every parameter whose value it coerces, given or
    not, and importing Pydantic for it costs 0.06 s of every command: a third of `status` and
    of an `ingest` with nothing to do. A value that was not given (None, or the option's own
    default), a text, a path without checks, and a number written in plain digits within its
    limits are taken here exactly as Typer would take them; any other value goes to Typer's
    own coercion, with its messages.
    """

    def __init__(self, param: Any, typer_coercion: Callable[[], Any]) -> None:
        self.param, self.typer_coercion = param, typer_coercion

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        done, plain = self.plain(value)
        if done:
            return plain
        return self.typer_coercion().coerce(value, param=param, ctx=ctx)

    def plain(self, value: Any) -> tuple[bool, Any]:
        param = self.param
        if param.multiple or param.nargs != 1:
            return (True, ()) if value is None else (False, None)
        if value is None:
            return True, None
        descriptor = param.type_descriptor
        kind, info = descriptor.annotation, descriptor.parameter_info
        if kind is str and isinstance(value, str) and info.parser is None:
            return True, value
        if kind is Path and isinstance(value, str) and info.parser is None and \
                not any(getattr(info, name, None) for name in _PATH_CHECKS):
            return True, Path(value)
        if kind in _DIGITS and info.parser is None and not getattr(info, "clamp", False):
            if isinstance(value, str) and _DIGITS[kind].fullmatch(value):
                value = kind(value)
            if type(value) is kind and (info.min is None or value >= info.min) and \
                    (info.max is None or value <= info.max):
                return True, value
        return False, None


class _Option(TyperOption):
    """An option shown as `--home DIR`: its metavar, nothing on flags, no `<float range> [x>=0]`."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or (self.name or "").upper()

    def _get_number_range_help_str(self) -> str | None:
        return None

    def get_runtime_param(self) -> Any:
        return _PlainValues(self, super().get_runtime_param)


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: `INGESTION_ID`, `[PATH]...`, never `{ingestion_id} <int>`."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_runtime_param(self) -> Any:
        return _PlainValues(self, super().get_runtime_param)

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _honest_help(param: Any) -> None:
    """Swap Typer's parameter classes for the two above: same state, other help rendering."""
    if type(param) is TyperOption:
        param.__class__ = _Option
    elif type(param) is TyperArgument:
        param.__class__ = _Argument


def _share_global_options(command: Any, options: list[Any]) -> None:
    """Give `command`, and every command below it, the global options it does not declare itself."""
    names = {param.name for param in command.params}
    command.params.extend(copy.copy(option) for option in options if option.name not in names)
    for param in command.params:
        _honest_help(param)
    for sub in (getattr(command, "commands", None) or {}).values():
        _share_global_options(sub, options)


class _Group(TyperGroup):
    """Shares the global options and turns known errors into a message and an exit code,
    and unexpected ones into a logged stack."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = [p for p in self.params if p.name in _GLOBAL_NAMES]
        if options:  # the top-level group: its callback declares them
            _share_global_options(self, options)

    # Typer passes its own Context, a subclass of the click Context the base class names.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except CsvReportError as exc:
            if not isinstance(exc, ConfigError):
                log.error("main", str(exc))
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except (_USAGE_ERROR, typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # Whoever read our output went away (`csvreport status | head -1`): nothing failed here, and
            # the command's own answer stands (`status --check` with a problem still exits 1).
            _discard_stdout()
            raise typer.Exit(ctx.meta.get(_EXIT_CODE, 0)) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence for a cron job
            known = db.fault(exc, None)  # a full disk or a permission, named with its path
            if known is not None:
                log.error("main", str(known))
                typer.echo(f"Error: {known}", err=True)
                raise typer.Exit(1) from None
            log.error("main", f"unexpected error: {type(exc).__name__}: {exc}", exc_info=True)
            written = log.log_file()
            if written is None:  # no log file took the stack: it must not be lost
                typer.echo("".join(traceback.format_exception(exc)).rstrip("\n"), err=True)
            where = f" (the stack is in {written})" if written else ""
            typer.echo(f"Error: unexpected {type(exc).__name__}: {exc}{where}", err=True)
            raise typer.Exit(1) from None


_EXIT_CODE = "csvreport.exit_code"  # in the context's meta: what the command exits with, whatever it printed


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not print a BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


app = typer.Typer(
    cls=_Group,
    help="Load CSV exports into SQLite exactly once and write hourly and daily Excel reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def global_options(ctx: typer.Context) -> dict[str, Any]:
    """The global options of this run, wherever on the command line they were given."""
    given: dict[str, Any] = ctx.meta.setdefault(_GIVEN, {})
    return {"home": None, "config": None, "quiet": False, "log_format": "kv", **given}


def _remember(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """Record a global option given at any level; the one given last (rightmost) wins."""
    given = ctx.meta.setdefault(_GIVEN, {})
    source = ctx.get_parameter_source(param.name) if param.name else None
    if param.name and (getattr(source, "name", "DEFAULT") != "DEFAULT" or param.name not in given):
        if param.name == "log_format" and value not in ("kv", "json"):
            raise typer.BadParameter("must be kv or json")
        given[param.name] = value
        if param.name in ("quiet", "log_format"):
            chosen = global_options(ctx)
            log.setup(None, quiet=chosen["quiet"], fmt=chosen["log_format"])
    return value


HomeOption = Annotated[Path | None, typer.Option(
    "--home", metavar="DIR", help="Home folder (default: $CSVREPORT_HOME, else the current directory).",
    show_default=False, expose_value=False, callback=_remember, rich_help_panel=GLOBAL_PANEL)]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", metavar="FILE", help="Settings file (default: HOME/config/settings.toml).",
    show_default=False, expose_value=False, callback=_remember, rich_help_panel=GLOBAL_PANEL)]
QuietOption = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only warnings and errors (for cron mail).",
    expose_value=False, callback=_remember, rich_help_panel=GLOBAL_PANEL)]
LogFormatOption = Annotated[str, typer.Option(
    "--log-format", metavar="kv|json", help="Log lines as key=value pairs (kv) or JSON objects (json).",
    expose_value=False, callback=_remember, rich_help_panel=GLOBAL_PANEL)]
WaitOption = Annotated[float, typer.Option(
    "--wait", metavar="SECONDS", min=0, help="Seconds to wait for another run's lock before exiting with code 3.")]
SourceOption = Annotated[str | None, typer.Option(
    "--source", metavar="NAME", help="Only this source (default: every source).", show_default=False)]


def _help(ctx: typer.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        typer.echo(ctx.get_help(), color=ctx.color)
        raise typer.Exit()


HelpOption = Annotated[bool, typer.Option(
    "--help", "-h", is_eager=True, expose_value=False, callback=_help, help="Show this message and exit.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"csvreport {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    home: HomeOption = None,
    config: ConfigOption = None,
    quiet: QuietOption = False,
    log_format: LogFormatOption = "kv",
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    help: HelpOption = False,
) -> None:
    """csvreport: CSV exports in, trustworthy Excel reports out, every hour, unattended.

    The global options work before or after a command's name: `csvreport -q ingest` is `csvreport ingest -q`.
    """


def settings_for(ctx: typer.Context, log_file: bool = True) -> Settings:
    """Resolve the configuration (from the global options) and start the log file.

    Commands that only read pass `log_file=False`: they must not create or write logs/.
    """
    chosen = global_options(ctx)
    settings = load_settings(chosen["home"], chosen["config"])
    if log_file:
        log.setup(settings.paths.logs, quiet=chosen["quiet"], fmt=chosen["log_format"])
    return settings


def _interactive(ctx: typer.Context) -> bool:
    return sys.stdout.isatty() and not global_options(ctx)["quiet"]


@app.command()
def ingest(
    ctx: typer.Context,
    source: SourceOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the new files and say what would happen; "
                                          "change nothing.")] = False,
    rehash: Annotated[bool, typer.Option("--rehash", help="Hash every file, even those whose path, size and "
                                         "modification time are unchanged.")] = False,
    sync_first: Annotated[bool, typer.Option("--sync", help="Run `csvreport sync` first (every SharePoint "
                                             "remote), then load what is local.")] = False,
    wait: WaitOption = 0.0,
) -> None:
    """Load every new CSV file of every enabled source into the database, exactly once.

    Example: csvreport --home /srv/csvreport --quiet ingest --wait 60
    """
    from csvreport.ingest import ingest as run_ingest
    from csvreport.ingest import log_dry_run
    from csvreport.progress import file_progress
    from csvreport.runs import recorded_run

    settings = settings_for(ctx)
    if source:
        settings.source(source)
    sync_error = _sync(settings, None, dry_run, wait) if sync_first else None
    arguments = {"source": source, "dry_run": dry_run, "rehash": rehash}
    with file_progress(_interactive(ctx)) as progress:
        if dry_run:
            from csvreport.runs import dry_run as unrecorded

            with unrecorded(settings, "ingest", wait) as (conn, run):
                run_ingest(settings, conn, run, source, dry_run=True, rehash=rehash, progress=progress)
            log_dry_run(run)
        else:
            with recorded_run(settings, "ingest", arguments, wait) as (conn, run):
                run_ingest(settings, conn, run, source, rehash=rehash, progress=progress)
    if sync_error is not None:  # after the load, dry run or not: SharePoint's refusal is the command's answer
        raise sync_error


@app.command()
def sync(
    ctx: typer.Context,
    remote: Annotated[str | None, typer.Option("--remote", metavar="NAME", help="Only the SharePoint remote "
                                                  "of this name (default: every one).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List each remote folder and say what would be "
                                          "downloaded and marked; change nothing.")] = False,
    wait: WaitOption = 0.0,
) -> None:
    """Download new files from SharePoint into their drop folders, then mark them processed there.

    See docs/sharepoint.md. An unreachable SharePoint is a warning (exit 0), so ingest goes on.
    Example: csvreport --home /srv/csvreport --quiet sync --wait 60
    """
    error = _sync(settings_for(ctx), remote, dry_run, wait)
    if error is not None:
        raise error


def _sync(settings: Settings, remote: str | None, dry_run: bool, wait: float) -> CsvReportError | None:
    """Run one (recorded) sync; a refusal from SharePoint is returned, so `ingest --sync` can still load."""
    from csvreport import sharepoint
    from csvreport.runs import dry_run as unrecorded
    from csvreport.runs import recorded_run

    remotes = sharepoint.prepare(settings, remote)
    arguments = {"remote": remote, "dry_run": dry_run}
    try:
        with (unrecorded(settings, "sync", wait) if dry_run
              else recorded_run(settings, "sync", arguments, wait)) as (conn, run):
            sharepoint.sync(settings, conn, run, remotes, dry_run=dry_run)
    except CsvReportError as exc:
        if isinstance(exc, ConfigError) or exc.exit_code == 3:
            raise
        return exc
    return None


@app.command()
def hourly(
    ctx: typer.Context,
    hour: Annotated[Optional[str], typer.Option(
        "--hour", metavar='"YYYY-MM-DD HH:00"',
        help="(Re)write this one local hour, \"YYYY-MM-DD HH:00\" (the first of a repeated hour), or an "
        "ISO time with offset such as 2026-10-25T02:00+01:00 (the second).", show_default=False)] = None,
    wait: WaitOption = 0.0,
) -> None:
    """Write the workbook of every complete hour of the catch-up window that has none yet or whose rows changed.

    Example: csvreport --home /srv/csvreport --quiet hourly --wait 300
    """
    from csvreport import reports
    from csvreport.runs import recorded_run

    settings = settings_for(ctx)
    request = reports.hour_request(settings, hour) if hour else None
    with recorded_run(settings, "hourly", {"hour": hour}, wait) as (conn, run):
        reports.hourly(settings, conn, run, request)


@app.command()
def daily(
    ctx: typer.Context,
    day: Annotated[Optional[str], typer.Option(
        "--date", metavar="YYYY-MM-DD", help="(Re)write the workbook of this local day, YYYY-MM-DD (default: today).",
        show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option("--until", metavar="HH:MM", help="End of the period, HH:MM local time "
                                                 "(default 24:00, the whole day).", show_default=False)] = None,
    wait: WaitOption = 0.0,
) -> None:
    """Write the day-to-date workbooks: one per daily slot (06:00, 12:00, 18:00, 24:00 by default).

    Without options: every slot of today and yesterday that is due and has no workbook yet,
    and every daily workbook already written whose rows changed since.

    Example: csvreport --home /srv/csvreport daily --date 2026-03-29 --until 18:00
    """
    from csvreport import reports
    from csvreport.runs import recorded_run

    settings = settings_for(ctx)
    request = reports.day_request(settings, day, until) if day or until else None
    with recorded_run(settings, "daily", {"date": day, "until": until}, wait) as (conn, run):
        reports.daily(settings, conn, run, request)


@app.command()
def send(
    ctx: typer.Context,
    test: Annotated[bool, typer.Option("--test", help="Send one test message to every recipient of both "
                                       "lists, to check the email settings; changes nothing.")] = False,
    wait: WaitOption = 0.0,
) -> None:
    """Mail every workbook not delivered yet (undeliverable ones too), or a test message with --test.

    Example: csvreport --home /srv/csvreport send --test
    """
    from csvreport import mail
    from csvreport.runs import recorded_run

    settings = settings_for(ctx)
    if test:
        mail.send_test(settings)
        return
    if not mail.enabled(settings):
        raise ConfigError(f"{settings.config_path}: email: mail delivery is not enabled; set enabled = true "
                          "in [email] (see docs/email.md)")
    with recorded_run(settings, "send", {}, wait) as (conn, run):
        outcome = mail.send_unsent(settings, conn, run, include_undeliverable=True)
        log.info("send", f"{outcome.sent} workbooks mailed, {outcome.failed} not")




archive_app = typer.Typer(cls=_Group, invoke_without_command=True)
app.add_typer(archive_app, name="archive")


@archive_app.callback()
def archive(
    ctx: typer.Context,
    before: Annotated[Optional[str], typer.Option("--before", metavar="YYYY-MM", help="Archive every whole "
                                                  "month before this one, in the configured time zone.")] = None,
    source: SourceOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """Move every whole month before --before into Parquet files; `archive restore` loads one back.

    Files go to archive/SOURCE/year=YYYY/month=M/*.parquet; each is read back and checked
    against the database before any row is deleted.
    Example: csvreport --home /srv/csvreport archive --before 2026-01
    """
    if ctx.invoked_subcommand:
        return
    if not before:
        raise ConfigError("archive: give --before YYYY-MM to archive, or use `csvreport archive restore "
                          "--month YYYY-MM` to load a month back")
    from csvreport import archive as archiving
    from csvreport.runs import recorded_run

    settings = settings_for(ctx)
    archiving.check_archive_request(settings, before, source)
    with recorded_run(settings, "archive", {"before": before, "source": source}, wait) as (conn, run):
        parts = archiving.archive(settings, conn, run, before, source)
        log.info("archive", f"{len(parts)} months archived, {sum(p.rows or 0 for p in parts)} rows")


@archive_app.command("restore")
def archive_restore(
    ctx: typer.Context,
    month: Annotated[str, typer.Option("--month", metavar="YYYY-MM", help="The archived month to load back.")],
    source: SourceOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """Load an archived month back into the database, then remove its Parquet files.

    Example: csvreport --home /srv/csvreport archive restore --month 2025-11 --source sensors
    """
    from csvreport import archive as archiving
    from csvreport.runs import recorded_run

    settings = settings_for(ctx)
    archiving.check_restore_request(settings, month, source)
    with recorded_run(settings, "archive restore", {"month": month, "source": source}, wait) as (conn, run):
        parts = archiving.restore(settings, conn, run, month, source)
        log.info("archive", f"{month}: {sum(p.rows or 0 for p in parts)} rows restored from {len(parts)} files")


StatusJson = Annotated[bool, typer.Option("--json", help="Print the facts as one JSON object.")]
StatusPrometheus = Annotated[bool, typer.Option(
    "--prometheus", help="Print the facts in the Prometheus text format (node_exporter textfile collector).")]
StatusCheck = Annotated[bool, typer.Option(
    "--check", help="Exit 1 with one line per problem that needs an operator, 0 when all is well.")]


@app.command()
def status(
    ctx: typer.Context,
    as_json: StatusJson = False,
    prometheus: StatusPrometheus = False,
    check: StatusCheck = False,
) -> None:
    """Health and metrics: database, files and rows per source, last runs, newest workbooks, problems.

    Reads only: never takes the lock, never waits, never writes (not even the log file).
    Example: csvreport --home /srv/csvreport status --check
    """
    from csvreport import status_render as render
    from csvreport.status import gather

    if as_json and prometheus:
        raise ConfigError("status: --json and --prometheus are two output formats; give one of them")
    facts = gather(settings_for(ctx, log_file=False))
    code = 1 if check and facts.problems else 0
    ctx.meta[_EXIT_CODE] = code  # also when the output cannot be written (a reader that went away)
    if as_json:
        typer.echo(render.to_json(facts))
    elif prometheus:
        typer.echo(render.to_prometheus(facts), nl=False)
    elif check:
        typer.echo(render.to_check(facts))
    elif sys.stdout.isatty():
        render.print_table(facts)
    else:
        typer.echo(render.to_text(facts), nl=False)
    if code:
        raise typer.Exit(code)


recover_app = typer.Typer(
    cls=_Group, no_args_is_help=True,
    help="Repairs: list and replay quarantined files, list loads and purge a wrong one, rewrite damaged workbooks.\n\n"
         "Example: csvreport --home /srv/csvreport recover list")
app.add_typer(recover_app, name="recover")


@recover_app.command("list")
def recover_list(ctx: typer.Context) -> None:
    """List the quarantined files with their reasons (reads only, like status).

    Example: csvreport --home /srv/csvreport recover list
    """
    from csvreport import recover

    settings = settings_for(ctx, log_file=False)
    conn = recover.require_database(settings)
    try:
        typer.echo(recover.list_text(settings, recover.quarantined_files(conn)), nl=False)
    finally:
        conn.close()


@recover_app.command("loads")
def recover_loads(
    ctx: typer.Context,
    source: SourceOption = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DATE", help="Only loads made on or after this local day, YYYY-MM-DD.",
        show_default=False)] = None,
) -> None:
    """List the loads (ingestion ids) with file, rows, event-time span and status: what purge takes.

    Reads only, like status.
    Example: csvreport --home /srv/csvreport recover loads --source sensors --since 2026-03-29
    """
    from csvreport import recover

    settings = settings_for(ctx, log_file=False)
    conn = recover.require_database(settings)
    try:
        typer.echo(recover.loads_text(settings, recover.loads(conn, settings, source, since)), nl=False)
    finally:
        conn.close()


@recover_app.command("replay")
def recover_replay(
    ctx: typer.Context,
    paths: Annotated[Optional[list[Path]], typer.Argument(
        metavar="PATH", help="Quarantined files (their path in quarantine/ or the path they arrived under).",
        show_default=False)] = None,
    everything: Annotated[bool, typer.Option("--all", help="Replay every quarantined file.")] = False,
    wait: WaitOption = 0.0,
) -> None:
    """Load quarantined files again, after the file or the configuration was fixed.

    A file that loads leaves quarantine; one that fails again stays, its reason brought up to date.
    Example: csvreport --home /srv/csvreport recover replay --all
    """
    from csvreport import recover
    from csvreport.runs import recorded_run

    settings = settings_for(ctx)
    conn = recover.require_database(settings)
    try:
        chosen = recover.select_for_replay(conn, settings, paths or [], everything)
    finally:
        conn.close()
    if not chosen:
        log.info("recover", "nothing to replay: no file is quarantined")
        return
    arguments = {"paths": [str(p) for p in paths or []], "all": everything}
    with recorded_run(settings, "recover replay", arguments, wait) as (conn, run):
        recover.replay(settings, conn, run, recover.select_for_replay(conn, settings, paths or [], everything))


@recover_app.command("purge")
def recover_purge(
    ctx: typer.Context,
    ingestion_id: Annotated[int, typer.Argument(
        metavar="INGESTION_ID", help="The id of the load, as `csvreport recover loads` lists it.", show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; change nothing, "
                                          "record no run.")] = False,
    wait: WaitOption = 0.0,
) -> None:
    """Remove exactly the rows one ingestion loaded, and mark it purged.

    The file may then load again: move it out of the drop folder if its rows are unwanted.
    Example: csvreport --home /srv/csvreport recover purge 42 --dry-run
    """
    from csvreport import recover
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, log_file=not dry_run)
    conn = recover.require_database(settings)
    try:
        if dry_run:
            typer.echo(recover.purge_preview(settings, conn, ingestion_id), nl=False)
            return
        recover.check_purge(conn, ingestion_id)
    finally:
        conn.close()
    with recorded_run(settings, "recover purge", {"ingestion_id": ingestion_id}, wait) as (conn, run):
        recover.purge(settings, conn, run, ingestion_id)


@recover_app.command("reports")
def recover_reports(
    ctx: typer.Context,
    wait: WaitOption = 0.0,
) -> None:
    """Write again every recorded workbook that is missing or differs from its recorded checksum.

    Example: csvreport --home /srv/csvreport recover reports --wait 600
    """
    from csvreport import recover
    from csvreport.runs import recorded_run

    settings = settings_for(ctx)
    with recorded_run(settings, "recover reports", {}, wait) as (conn, run):
        recover.rewrite_reports(settings, conn, run)


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[Optional[Path], typer.Argument(
        metavar="DIR", help="The new home folder (default: --home, $CSVREPORT_HOME, else the current directory).",
        show_default=False)] = None,
) -> None:
    """Create a home folder: a commented config/settings.toml, the folders, and config/crontab.

    config/crontab holds the cron jobs for this home, with absolute paths. Never overwrites an
    existing settings.toml.
    Example: csvreport init /srv/csvreport
    """
    from csvreport.config import resolve_home
    from csvreport.init import create_home

    home = resolve_home(directory or global_options(ctx)["home"])
    for path in create_home(home):
        typer.echo(f"created {path}")
    typer.echo(f"Next: edit {home / 'config' / 'settings.toml'}, then run `csvreport --home {home} ingest`; "
               f"then install the cron jobs of {home / 'config' / 'crontab'} with `crontab -e` "
               "(see docs/operations.md).")


def main() -> None:
    app(prog_name="csvreport")

