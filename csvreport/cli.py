"""The command line: option declarations that forward to one library function each.

Only this module turns a CsvReportError into `Error: …` on stderr and its exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from csvreport import __version__, log
from csvreport.config import Settings, load_settings
from csvreport.errors import ConfigError, CsvReportError


# Typer's own usage errors (a ClickException, wherever Typer takes click from) pass through untouched.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _Group(TyperGroup):
    """Turns known errors into a message and an exit code, and unexpected ones into a logged stack."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CsvReportError as exc:
            if not isinstance(exc, ConfigError):
                log.error("main", str(exc))
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except (_USAGE_ERROR, typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence for a cron job
            log.error("main", f"unexpected error: {type(exc).__name__}: {exc}", exc_info=True)
            typer.echo(f"Error: unexpected {type(exc).__name__}: {exc} (the stack is in the log file)", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    help="Load CSV exports into SQLite exactly once and write hourly and daily Excel reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

HomeOption = Annotated[Optional[Path], typer.Option(
    "--home", help="Home folder (default: $CSVREPORT_HOME, else the current directory).", show_default=False)]
ConfigOption = Annotated[Optional[Path], typer.Option(
    "--config", help="Settings file (default: HOME/config/settings.toml).", show_default=False)]
WaitOption = Annotated[float, typer.Option(
    "--wait", min=0, help="Seconds to wait for another run's lock before exiting with code 3.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"csvreport {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    home: HomeOption = None,
    config: ConfigOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only warnings and errors (for cron mail).")]
    = False,
    log_format: Annotated[str, typer.Option("--log-format", help="kv (key=value lines) or json.")] = "kv",
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """csvreport: CSV exports in, trustworthy Excel reports out, every hour, unattended."""
    if log_format not in ("kv", "json"):
        raise typer.BadParameter("must be kv or json", param_hint="--log-format")
    ctx.obj = {"home": home, "config": config, "quiet": quiet, "log_format": log_format}
    log.setup(None, quiet=quiet, fmt=log_format)


def settings_for(ctx: typer.Context, home: Optional[Path], config: Optional[Path],
                 log_file: bool = True) -> Settings:
    """Resolve the configuration (command options win over the global ones) and start the log file.

    Commands that only read pass `log_file=False`: they must not create or write logs/.
    """
    root = ctx.find_root().obj or {}
    settings = load_settings(home or root.get("home"), config or root.get("config"))
    if log_file:
        log.setup(settings.paths.logs, quiet=root.get("quiet", False), fmt=root.get("log_format", "kv"))
    return settings


def _interactive(ctx: typer.Context) -> bool:
    root = ctx.find_root().obj or {}
    return sys.stdout.isatty() and not root.get("quiet")


@app.command()
def ingest(
    ctx: typer.Context,
    source: Annotated[Optional[str], typer.Option("--source", help="Only this source.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the new files and say what would happen; "
                                          "change nothing.")] = False,
    rehash: Annotated[bool, typer.Option("--rehash", help="Hash every file, even those whose path, size and "
                                         "modification time are unchanged.")] = False,
    sync_first: Annotated[bool, typer.Option("--sync", help="Run `csvreport sync` first (every SharePoint "
                                             "remote), then load what is local.")] = False,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Load every new CSV file of every enabled source into the database, exactly once.

    Example: csvreport --home /srv/csvreport --quiet ingest --wait 60
    """
    from csvreport.ingest import ingest as run_ingest
    from csvreport.progress import file_progress
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, home, config)
    if source:
        settings.source(source)
    sync_error = _sync(settings, None, dry_run, wait) if sync_first else None
    arguments = {"source": source, "dry_run": dry_run, "rehash": rehash}
    with file_progress(_interactive(ctx)) as progress:
        if dry_run:
            from csvreport.runs import dry_run as unrecorded

            with unrecorded(settings, "ingest", wait) as (conn, run):
                run_ingest(settings, conn, run, source, dry_run=True, rehash=rehash, progress=progress)
            return
        with recorded_run(settings, "ingest", arguments, wait) as (conn, run):
            run_ingest(settings, conn, run, source, rehash=rehash, progress=progress)
    if sync_error is not None:
        raise sync_error


@app.command()
def sync(
    ctx: typer.Context,
    remote: Annotated[str | None, typer.Option("--remote", metavar="NAME", help="Only the SharePoint remote "
                                                  "of this name (default: every one).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List each remote folder and say what would be "
                                          "downloaded and marked; change nothing.")] = False,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Download new files from SharePoint into their drop folders, then mark them processed there.

    See docs/sharepoint.md. An unreachable SharePoint is a warning (exit 0), so ingest goes on.
    Example: csvreport --home /srv/csvreport --quiet sync --wait 60
    """
    error = _sync(settings_for(ctx, home, config), remote, dry_run, wait)
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
        with (unrecorded(settings, "sync", wait, summary=False) if dry_run
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
        "--hour", help="(Re)write this one local hour, \"YYYY-MM-DD HH:00\" (the first of a repeated hour), or an "
        "ISO time with offset such as 2026-10-25T02:00+01:00 (the second).", show_default=False)] = None,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the workbook of every complete hour of the catch-up window that has none yet or whose rows changed.

    Example: csvreport --home /srv/csvreport --quiet hourly --wait 300
    """
    from csvreport import reports
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, home, config)
    request = reports.hour_request(settings, hour) if hour else None
    with recorded_run(settings, "hourly", {"hour": hour}, wait) as (conn, run):
        reports.hourly(settings, conn, run, request)


@app.command()
def daily(
    ctx: typer.Context,
    day: Annotated[Optional[str], typer.Option("--date", help="(Re)write the workbook of this local day, "
                                               "YYYY-MM-DD (default: today).", show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="End of the period, HH:MM local time "
                                                 "(default 24:00, the whole day).", show_default=False)] = None,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """The quad report: day-to-date workbooks at each slot; without options every due slot missing or stale.

    Example: csvreport --home /srv/csvreport daily --date 2026-03-29 --until 18:00
    """
    from csvreport import reports
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, home, config)
    request = reports.day_request(settings, day, until) if day or until else None
    with recorded_run(settings, "daily", {"date": day, "until": until}, wait) as (conn, run):
        reports.daily(settings, conn, run, request)


@app.command()
def send(
    ctx: typer.Context,
    test: Annotated[bool, typer.Option("--test", help="Send one test message to every recipient of both "
                                       "lists, to check the email settings; changes nothing.")] = False,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Mail every workbook not delivered yet (undeliverable ones too), or a test message with --test.

    Example: csvreport --home /srv/csvreport send --test
    """
    from csvreport import mail
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, home, config)
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
SourceOption = Annotated[Optional[str], typer.Option("--source", help="Only this source (default: every source).")]


@archive_app.callback()
def archive(
    ctx: typer.Context,
    before: Annotated[Optional[str], typer.Option("--before", metavar="YYYY-MM", help="Archive every whole "
                                                  "month before this one, in the configured time zone.")] = None,
    source: SourceOption = None,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Move every whole month before --before into Parquet files; `archive restore` loads one back.

    Files go to archive/SOURCE/year=YYYY/month=MM/*.parquet; each is read back and checked
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

    settings = settings_for(ctx, home, config)
    with recorded_run(settings, "archive", {"before": before, "source": source}, wait) as (conn, run):
        parts = archiving.archive(settings, conn, run, before, source)
        log.info("archive", f"{len(parts)} months archived, {sum(p.rows or 0 for p in parts)} rows")


@archive_app.command("restore")
def archive_restore(
    ctx: typer.Context,
    month: Annotated[str, typer.Option("--month", metavar="YYYY-MM", help="The archived month to load back.")],
    source: SourceOption = None,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Load an archived month back into the database, then remove its Parquet files.

    Example: csvreport --home /srv/csvreport archive restore --month 2025-11 --source sensors
    """
    from csvreport import archive as archiving
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, home, config)
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
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Health and metrics: database, files and rows per source, last runs, newest workbooks, problems.

    Reads only: never takes the lock, never waits, never writes (not even the log file).
    Example: csvreport --home /srv/csvreport status --check
    """
    from csvreport import status as health

    facts = health.gather(settings_for(ctx, home, config, log_file=False))
    if as_json:
        typer.echo(health.to_json(facts))
    elif prometheus:
        typer.echo(health.to_prometheus(facts), nl=False)
    elif check:
        typer.echo("\n".join(facts["problems"]) if facts["problems"] else "OK: nothing needs an operator")
    elif sys.stdout.isatty():
        health.print_table(facts)
    else:
        typer.echo(health.to_text(facts), nl=False)
    if check and facts["problems"]:
        raise typer.Exit(1)


recover_app = typer.Typer(
    cls=_Group, no_args_is_help=True,
    help="Repairs: list and replay quarantined files, purge a wrong load, rewrite damaged workbooks.\n\n"
         "Example: csvreport --home /srv/csvreport recover list")
app.add_typer(recover_app, name="recover")


@recover_app.command("list")
def recover_list(ctx: typer.Context, home: HomeOption = None, config: ConfigOption = None) -> None:
    """List the quarantined files with their reasons (reads only, like status).

    Example: csvreport --home /srv/csvreport recover list
    """
    from csvreport import recover

    settings = settings_for(ctx, home, config, log_file=False)
    conn = recover.require_database(settings)
    try:
        typer.echo(recover.list_text(settings, recover.quarantined_files(conn)), nl=False)
    finally:
        conn.close()


@recover_app.command("replay")
def recover_replay(
    ctx: typer.Context,
    paths: Annotated[Optional[list[Path]], typer.Argument(
        help="Quarantined files (their path in quarantine/ or the path they arrived under).",
        show_default=False)] = None,
    everything: Annotated[bool, typer.Option("--all", help="Replay every quarantined file.")] = False,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Load quarantined files again, after the file or the configuration was fixed.

    A file that loads leaves quarantine; one that fails again stays, its reason brought up to date.
    Example: csvreport --home /srv/csvreport recover replay --all
    """
    from csvreport import recover
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, home, config)
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
    ingestion_id: Annotated[int, typer.Argument(help="The id of the load in ingestion_log.", show_default=False)],
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove exactly the rows one ingestion loaded, and mark it purged.

    The file may then load again: move it out of the drop folder if its rows are unwanted.
    Example: csvreport --home /srv/csvreport recover purge 42
    """
    from csvreport import recover
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, home, config)
    conn = recover.require_database(settings)
    try:
        recover.check_purge(conn, ingestion_id)
    finally:
        conn.close()
    with recorded_run(settings, "recover purge", {"ingestion_id": ingestion_id}, wait) as (conn, run):
        recover.purge(settings, conn, run, ingestion_id)


@recover_app.command("reports")
def recover_reports(
    ctx: typer.Context,
    wait: WaitOption = 0.0,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Write again every recorded workbook that is missing or differs from its recorded checksum.

    Example: csvreport --home /srv/csvreport recover reports --wait 600
    """
    from csvreport import recover
    from csvreport.runs import recorded_run

    settings = settings_for(ctx, home, config)
    with recorded_run(settings, "recover reports", {}, wait) as (conn, run):
        recover.rewrite_reports(settings, conn, run)


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[Optional[Path], typer.Argument(
        help="The new home folder (default: --home, $CSVREPORT_HOME, else the current directory).",
        show_default=False)] = None,
) -> None:
    """Create a home folder: a commented config/settings.toml and the folders csvreport uses.

    Never overwrites an existing settings.toml.
    Example: csvreport init /srv/csvreport
    """
    from csvreport.config import resolve_home
    from csvreport.init import create_home

    root = ctx.find_root().obj or {}
    home = resolve_home(directory or root.get("home"))
    for path in create_home(home):
        typer.echo(f"created {path}")
    typer.echo(f"Next: edit {home / 'config' / 'settings.toml'}, then run `csvreport --home {home} ingest` "
               "and paste the lines of crontab.example (see docs/operations.md).")


def main() -> None:
    app(prog_name="csvreport")

