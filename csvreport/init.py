"""`csvreport init [DIR]`: a new home folder, ready for `csvreport ingest`, in one command,
with the crontab lines for it (config/crontab), absolute paths written in."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from csvreport.config import DEFAULT_CONFIG
from csvreport.errors import ConfigError

FOLDERS = ("config", "data", "reports", "quarantine", "logs", "inbox/sensors")

SETTINGS_TEMPLATE = '''\
# csvreport configuration (see docs/operations.md of csvreport). Relative paths resolve
# against this home folder, never against the directory cron starts in. Check it with
# `csvreport status` after every change: a mistake stops every command with exit code 2
# and names the key.

# Wall-clock zone of naive CSV timestamps and of report windows (IANA name).
timezone = "Europe/Berlin"

[paths]                          # all optional; these are the defaults
database   = "data/csvreport.sqlite3"
reports    = "reports"
quarantine = "quarantine"
logs       = "logs"

[ingest]
settle_seconds = 30              # files modified more recently wait for the next run
max_bad_rows   = 0               # per file; more bad rows quarantine the whole file

# One [[sources]] block per kind of export. Its table in the database has the same name.
[[sources]]
name      = "sensors"
pattern   = "inbox/sensors/*.csv"            # a glob, or a list of globs
timestamp = "ts"                             # the event time column
# timestamp_format = "%d.%m.%Y %H:%M"        # strptime format; default ISO 8601
columns   = ["ts", "site", "metric", "value"]   # allowlist: other columns are dropped
types     = { value = "real" }               # text (default), integer, real
# key     = ["ts", "site", "metric"]         # a row with the same key replaces the older one
# delimiter = ";"                            # default: detected among , ; tab |
# encoding  = "cp1252"                       # default utf-8 (a BOM is accepted)
# decimal   = ","                            # for exports such as 1.234,75
# null_values = ["", "NA"]
# move_bad_files  = false                    # true: also move bad files out of drop folders outside the home
# follow_symlinks = false                    # true: read the files that symbolic links in the drop folder point at

[[reports]]
name     = "sensor_summary"      # the sheet name
# title  = "Sensor summary"      # on the Summary sheet, printed pages and mail subjects; default: name
source   = "sensors"
group_by = ["site", "metric"]
# chart  = "Average"             # the measure charted by hour; default: the first that is not a count
# total  = false                 # no Total row, for groups whose units differ
# decimals = 1                   # fixed decimals of sum/avg/min/max; or a [reports.decimals] table per label
[reports.measures]               # label = "count", or "count|sum|avg|min|max:column"; labels are headers
"Readings" = "count"
"Average"  = "avg:value"
"Highest"  = "max:value"
# [reports.limits]               # values outside are highlighted and counted on the Summary
# "Highest" = { above = 80.0 }

[hourly]
catch_up_hours = 24              # how far back a plain `csvreport hourly` fills gaps

[daily]
slots = ["06:00", "12:00", "18:00", "24:00"]

# [monitor]
# ping_url = "https://hc-ping.com/your-check-uuid"   # dead-man's switch: /start, success, /fail
# max_ingest_age_hours = 6       # status --check: a source with no new file for this long
# max_sync_age_hours = 6         # status --check: a [[sharepoint]] remote not synced for this long

# [email]                        # the password only from CSVREPORT_SMTP_PASSWORD (.env or environment)
# host = "smtp.example.com"
# sender = "reports@example.com"
# hourly_to = ["ops@example.com"]
# daily_to = ["ops@example.com"]

# [[sharepoint]]                 # `csvreport sync` / `ingest --sync`: pull exports from SharePoint (docs/sharepoint.md)
# name = "plant_exports"         # the client secret only from CSVREPORT_SHAREPOINT_SECRET (.env or environment)
# site = "https://contoso.sharepoint.com/sites/Operations"
# library = "Documents"
# folder = "Exports/Sensors"
# download_to = "inbox/sensors"
# processed_folder = "Exports/Sensors/Processed"
# tenant_id = "00000000-0000-0000-0000-000000000000"
# client_id = "00000000-0000-0000-0000-000000000000"
'''


# The jobs of the repository's crontab.example, for one home and one installed executable.
CRONTAB_TEMPLATE = """\
# csvreport's cron jobs for the home folder {home}, written by `csvreport init`.
# Install them as the user that owns the home folder: paste these lines into `crontab -e`,
# or run `crontab {crontab}`
# when that user has no other cron jobs (it replaces them). Cron mails whatever a job
# prints; with --quiet that is only warnings and errors. Set MAILTO.
SHELL=/bin/sh
# MAILTO=ops@example.com

# m    h            dom mon dow  command
# Load new CSV files every 5 minutes; wait up to 4 minutes for a run that is still going.
*/5    *            *   *   *    {csvreport} --home {home_arg} --quiet ingest --wait 240
# The hourly workbooks, a few minutes past the hour (after that hour's files arrived).
7      *            *   *   *    {csvreport} --home {home_arg} --quiet hourly --wait 600
# The daily workbooks, a quarter past each slot of [daily] slots (06:00 12:00 18:00 24:00);
# the 00:15 run writes yesterday's 24:00 slot, the whole day.
15     0,6,12,18    *   *   *    {csvreport} --home {home_arg} --quiet daily --wait 900
# Health: one mail listing the problems when something needs an operator, silence otherwise.
45     7-19         *   *   1-5  out=$({csvreport} --home {home_arg} status --check) || echo "$out"
# Metrics for node_exporter's textfile collector, and a nightly copy of the database
# (mkdir {home_arg}/backup first): see docs/operations.md.
# *    *            *   *   *    {csvreport} --home {home_arg} status --prometheus > /var/lib/node_exporter/csvreport.prom.tmp && mv /var/lib/node_exporter/csvreport.prom.tmp /var/lib/node_exporter/csvreport.prom
# 30   2            *   *   *    sqlite3 {home_arg}/data/csvreport.sqlite3 ".backup '{home}/backup/csvreport.sqlite3'"
"""


def executable() -> str:
    """The command that runs this csvreport, by absolute path: the console script it was started
    as, else the one installed beside this Python, else `python -m csvreport`."""
    started = Path(sys.argv[0])
    if started.name == "csvreport" and started.is_file():
        return shlex.quote(str(started.absolute()))
    beside = Path(sys.executable).parent / "csvreport"
    if beside.is_file():
        return shlex.quote(str(beside))
    return f"{shlex.quote(sys.executable)} -m csvreport"


def crontab_text(home: Path, csvreport: str) -> str:
    return CRONTAB_TEMPLATE.format(home=home, home_arg=shlex.quote(str(home)), csvreport=csvreport,
                                   crontab=shlex.quote(str(home / "config" / "crontab")))


def create_home(home: Path) -> list[Path]:
    """Create the folders, the commented settings file and config/crontab; refuse (exit 2) to
    overwrite a configuration."""
    settings = home / DEFAULT_CONFIG
    if settings.exists():
        raise ConfigError(f"{settings} already exists; edit it, or move it away to start over "
                             "(init never overwrites a configuration)")
    if home.exists() and not home.is_dir():
        raise ConfigError(f"{home} exists and is not a folder; choose another DIR")
    created = []
    for folder in FOLDERS:
        path = home / folder
        if not path.is_dir():
            path.mkdir(parents=True)
            created.append(path)
    with open(settings, "x", encoding="utf-8") as handle:
        handle.write(SETTINGS_TEMPLATE)
    created.append(settings)
    crontab = home / "config" / "crontab"
    if not crontab.exists():  # an operator's own is kept
        crontab.write_text(crontab_text(home, executable()), encoding="utf-8")
        created.append(crontab)
    return created
