"""Event times land on the right UTC instant, including around both DST changes of 2026 in Berlin."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import write_csv
from csvreport.timeconv import TimestampParser

BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


@pytest.mark.parametrize("text, expected", [
    ("2026-03-29 01:59:59", "2026-03-29 00:59:59"),   # CET, just before the spring-forward gap
    ("2026-03-29 02:00:00", "2026-03-29 01:00:00"),   # inside the gap: read with +01:00 ...
    ("2026-03-29 02:30:00", "2026-03-29 01:30:00"),   # ... so it lands at 03:30 CEST
    ("2026-03-29 03:00:00", "2026-03-29 01:00:00"),   # CEST
    ("2026-03-29T03:30:00", "2026-03-29 01:30:00"),
    ("2026-10-25 01:59:59", "2026-10-24 23:59:59"),   # CEST
    ("2026-10-25 02:00:00", "2026-10-25 00:00:00"),   # the repeated hour: first occurrence (CEST)
    ("2026-10-25 02:30:00", "2026-10-25 00:30:00"),
    ("2026-10-25 03:00:00", "2026-10-25 02:00:00"),   # CET
    ("2026-10-25 02:30:00+01:00", "2026-10-25 01:30:00"),  # the second occurrence, by its offset
    ("2026-03-29T02:30:00Z", "2026-03-29 02:30:00"),
    ("2026-03-29T04:30:00.123+0200", "2026-03-29 02:30:00"),
    ("2026-03-29 04:30-05:30", "2026-03-29 10:00:00"),
    ("2026-03-29", "2026-03-28 23:00:00"),
])
def test_parser_puts_each_value_on_its_instant(text, expected):
    assert TimestampParser("Europe/Berlin")(text) == utc(expected)


def test_every_minute_of_both_dst_days_matches_zoneinfo():
    parser = TimestampParser("Europe/Berlin")
    for day in ("2026-03-29", "2026-10-25"):
        start = datetime.fromisoformat(day)
        for minute in range(0, 24 * 60, 7):
            local = start + timedelta(minutes=minute, seconds=minute % 60)
            expected = int(local.replace(tzinfo=BERLIN, fold=0).timestamp())
            assert parser(local.strftime("%Y-%m-%d %H:%M:%S")) == expected, local
            assert parser(local.strftime("%Y-%m-%dT%H:%M:%S")) == expected, local


def test_gap_time_lands_in_the_next_local_hour():
    epoch = TimestampParser("Europe/Berlin")("2026-03-29 02:30:00")
    local = datetime.fromtimestamp(epoch, BERLIN)
    assert (local.hour, local.minute, local.utcoffset()) == (3, 30, timedelta(hours=2))


@pytest.mark.parametrize("text", ["2026-02-30 10:00:00", "2026-03-29 25:00:00", "yesterday", "2026-03-29 10:60:00",
                                  "2026-03-29 10:00:00+25:00", ""])
def test_invalid_values_are_refused(text):
    with pytest.raises(ValueError):
        TimestampParser("Europe/Berlin")(text)


def test_end_to_end_naive_and_offset_values_around_both_changes(home, cli):
    lines = ["ts,site,metric,value"]
    cases = {
        "2026-03-29 01:30:00": "2026-03-29 00:30:00",
        "2026-03-29 02:30:00": "2026-03-29 01:30:00",
        "2026-03-29 03:30:00": "2026-03-29 01:30:00",
        "2026-10-25 02:30:00": "2026-10-25 00:30:00",
        "2026-10-25T02:30:00+01:00": "2026-10-25 01:30:00",
        "2026-10-25T01:30:00Z": "2026-10-25 01:30:00",
    }
    for i, text in enumerate(cases):
        lines.append(f"{text},s,m,{i}")
    write_csv(home / "inbox" / "sensors" / "dst.csv", "\n".join(lines) + "\n")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        got = conn.execute("SELECT ts, _ts FROM sensors ORDER BY value").fetchall()
        span = conn.execute("SELECT min_ts, max_ts FROM ingestion_log").fetchone()
    assert got == [(text, utc(expected)) for text, expected in cases.items()]
    assert span == (min(utc(e) for e in cases.values()), max(utc(e) for e in cases.values()))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham",
                                  "America/Santiago", "Asia/Kolkata", "UTC"])
def test_a_whole_year_matches_zoneinfo(zone):
    """Every 37 minutes (and 17 seconds) of 2026, in zones with odd offsets and half-hour DST shifts."""
    parser = TimestampParser(zone)
    tz = ZoneInfo(zone)
    local = datetime(2026, 1, 1)
    step = timedelta(minutes=37, seconds=17)
    while local.year == 2026:
        expected = int(local.replace(tzinfo=tz, fold=0).timestamp())
        assert parser(local.strftime("%Y-%m-%d %H:%M:%S")) == expected, (zone, local)
        local += step


def load_times(home, cli, zone: str, lines: list[str], fmt: str | None = None) -> list[int]:
    """Ingest `lines` ("ts,n" and its rows) as a source in `zone` (with `fmt`, if any): `_ts` in order of n,
    after checking that no row was rejected."""
    from conftest import write_config

    write_config(home, text=f"""
        timezone = "{zone}"
        [ingest]
        settle_seconds = 0
        [[sources]]
        name = "sensors"
        pattern = "inbox/sensors/*.csv"
        timestamp = "ts"
        {f'timestamp_format = "{fmt}"' if fmt else ""}
        columns = ["ts", "n"]
        types = {{ n = "integer" }}
    """)
    write_csv(home / "inbox" / "sensors" / "times.csv", "\n".join(lines) + "\n")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT rows_rejected FROM ingestion_log").fetchone()[0] == 0
        return [r[0] for r in conn.execute("SELECT _ts FROM sensors ORDER BY n")]


@pytest.mark.parametrize("zone, days", [("Europe/Berlin", ("2026-03-29", "2026-10-25")),
                                        ("Australia/Lord_Howe", ("2026-04-05", "2026-10-04"))])
def test_whole_dst_days_through_a_file_match_zoneinfo(home, cli, zone, days):
    tz = ZoneInfo(zone)
    lines, expected = ["ts,n"], []
    for day in days:
        start = datetime.fromisoformat(day)
        for n in range(0, 24 * 60 * 60, 7 * 60 + 3):
            local = start + timedelta(seconds=n)
            lines.append(f"{local:%Y-%m-%d %H:%M:%S},{len(expected)}")
            expected.append(int(local.replace(tzinfo=tz, fold=0).timestamp()))
    assert load_times(home, cli, zone, lines) == expected

MIXED = ["2026-10-25T02:30:00Z", "2026-10-25 02:30:00", "2026-10-25T02:30:00+01:00", "2026-10-25 02:30:00.250",
         "2026-10-25T02:30:00,5-0530", "2026-10-25", "2026-10-25 02:30", "2026-03-29T02:30:00.123456Z",
         "2026-03-29 02:30:00", "2026-03-29 02:30:00+0200"]


def expected_instant(text: str, zone: ZoneInfo) -> int:
    """fromisoformat and the SPEC's zone rules: an aware value as it says, a naive one at fold=0."""
    value = datetime.fromisoformat(text.replace(",", "."))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone, fold=0)
    return int(value.timestamp() // 1)


@pytest.mark.parametrize("lead", [0, 1, 3, 4, 5])
def test_a_file_led_by_any_iso_shape_puts_every_row_on_its_instant(home, cli, lead):
    """The first row's shape picks how the file's times are cut (an offset, milliseconds, a date
    alone...); every other shape in the same file is still read, and read right."""
    texts = [MIXED[lead]] + [t for i, t in enumerate(MIXED) if i != lead]
    lines = ["ts,site,metric,value"] + [f'"{text}",s,m,{i}' for i, text in enumerate(texts)]
    write_csv(home / "inbox" / "sensors" / "mixed.csv", "\n".join(lines) + "\n")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        got = conn.execute("SELECT ts, _ts FROM sensors ORDER BY value").fetchall()
    assert got == [(text, expected_instant(text, BERLIN)) for text in texts], result.output


def test_spreadsheet_times_without_leading_zeros_load_like_padded_ones(home, cli):
    zone = ZoneInfo("America/New_York")
    lines, expected = ["ts,n"], []
    start = datetime(2026, 11, 1)  # the fall-back day: 1:30 AM happens twice, the first is taken
    for n, seconds in enumerate(range(0, 26 * 3600, 1789)):
        local = start + timedelta(seconds=seconds)
        padded = local.strftime("%m/%d/%Y %I:%M:%S %p")
        text = padded if n % 3 == 0 else f"{local.month}/{local.day}/{local.year} {int(local.strftime('%I'))}" \
            f"{local.strftime(':%M:%S %p')}"
        lines.append(f"{text},{n}")
        expected.append(int(local.replace(tzinfo=zone, fold=0).timestamp()))
    assert load_times(home, cli, "America/New_York", lines, fmt="%m/%d/%Y %I:%M:%S %p") == expected
