"""Helpers for the report tests: generate CSV rows, and compute what a workbook must say
independently of csvreport (csv module, zoneinfo, plain Python arithmetic)."""

from __future__ import annotations

import csv
import os
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

import openpyxl

ZONE = ZoneInfo("Europe/Berlin")
SITES = ["berlin-01", "hamburg-02", "köln-03"]
METRICS = ["humidity", "temperature"]

CONFIG = """
timezone = "Europe/Berlin"

[ingest]
settle_seconds = 0
max_bad_rows = 0

[[sources]]
name = "sensors"
pattern = "inbox/sensors/*.csv"
timestamp = "ts"
columns = ["ts", "site", "metric", "value"]
types = {{ value = "real" }}

[[reports]]
name = "by_site"
source = "sensors"
group_by = ["site", "metric"]
[reports.measures]
readings = "count"
filled = "count:value"
value_sum = "sum:value"
value_avg = "avg:value"
value_min = "min:value"
value_max = "max:value"

[[reports]]
name = "overall"
source = "sensors"
group_by = []
[reports.measures]
readings = "count"
value_max = "max:value"

[hourly]
catch_up_hours = {catch_up}

[daily]
slots = ["06:00", "12:00", "18:00", "24:00"]
"""

MEASURES = {  # report -> (group columns, [(label, func, column)])
    "by_site": (["site", "metric"], [("readings", "count", None), ("filled", "count", "value"),
                                     ("value_sum", "sum", "value"), ("value_avg", "avg", "value"),
                                     ("value_min", "min", "value"), ("value_max", "max", "value")]),
    "overall": ([], [("readings", "count", None), ("value_max", "max", "value")]),
}


def make_rows(start_utc: datetime, hours: float, seed: int, step_minutes: int = 10,
              sites=SITES) -> list[dict[str, str]]:
    """Readings every step for every site and metric; some values empty. Times carry their offset."""
    rng = random.Random(seed)
    rows = []
    moment = start_utc
    end = start_utc + timedelta(hours=hours)
    while moment < end:
        local = moment.astimezone(ZONE)
        for site in sites:
            for metric in METRICS:
                value = "" if rng.random() < 0.08 else f"{rng.uniform(-5, 80):.2f}"
                rows.append({"ts": local.isoformat(sep=" "), "site": site, "metric": metric, "value": value})
        moment += timedelta(minutes=step_minutes)
    return rows


def write_rows(path: Path, rows: list[dict[str, str]], age: float = 3600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["ts", "site", "metric", "value", "unit"], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "unit": "x"})
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def raw_rows(paths) -> list[tuple[int, str, str, Optional[float]]]:
    """(epoch, site, metric, value) straight from the CSV files."""
    out = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                ts = row["ts"]
                moment = datetime.fromisoformat(ts)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=ZONE, fold=0)
                out.append((int(moment.timestamp()), row["site"], row["metric"],
                            float(row["value"]) if row["value"] != "" else None))
    return out


def expected(rows, start: int, end: int, report: str, grouped: bool = True) -> list[tuple[Any, ...]]:
    """One tuple per group (sorted by the group columns), as the workbook must show it."""
    group_by, measures = MEASURES[report]
    group_by = group_by if grouped else []
    groups: dict[tuple, list] = {}
    for ts, site, metric, value in rows:
        if start <= ts < end:
            key = tuple({"site": site, "metric": metric}[c] for c in group_by)
            groups.setdefault(key, []).append(value)
    result = []
    for key in sorted(groups):
        values = groups[key]
        present = [v for v in values if v is not None]
        line = list(key)
        for _, func, column in measures:
            if func == "count":
                line.append(len(values) if column is None else len(present))
            elif func == "sum":
                line.append(sum(present) if present else None)
            elif func == "avg":
                line.append(sum(present) / len(present) if present else None)
            elif func == "min":
                line.append(min(present) if present else None)
            else:
                line.append(max(present) if present else None)
        result.append(tuple(line))
    return result


def expected_total(rows, start: int, end: int, report: str) -> Optional[tuple[Any, ...]]:
    group_by, measures = MEASURES[report]
    inside = [r for r in rows if start <= r[0] < end]
    if not inside or not group_by:
        return None
    present = [r[3] for r in inside if r[3] is not None]
    line = ["Total"] + [None] * (len(group_by) - 1)
    for _, func, column in measures:
        line.append({"count": len(inside) if column is None else len(present),
                     "sum": sum(present), "avg": sum(present) / len(present),
                     "min": min(present), "max": max(present)}[func])
    return tuple(line)


def sheet(path: Path, name: str) -> tuple[list[str], list[tuple], Optional[tuple]]:
    """Header, group rows and totals row of one report sheet, values as openpyxl reads them."""
    book = openpyxl.load_workbook(path)
    ws = book[name]
    values = [tuple(r) for r in ws.iter_rows(values_only=True)]
    header, body = list(values[0]), values[1:]
    total = body[-1] if body and body[-1][0] == "Total" else None
    if total:
        body = body[:-1]
    return header, body, total


def about(path: Path) -> dict[str, Any]:
    book = openpyxl.load_workbook(path)
    return {row[0]: row[1] for row in book["About"].iter_rows(min_row=2, max_col=2, values_only=True) if row[0]}


def window_of(path: Path) -> tuple[int, int]:
    facts = about(path)
    parse = lambda text: int(datetime.strptime(text, "%Y-%m-%d %H:%M %z").timestamp())  # noqa: E731
    return parse(facts["window start"]), parse(facts["window end"])


def assert_rows_equal(got, want) -> None:
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        assert len(g) == len(w), (g, w)
        for a, b in zip(g, w):
            if isinstance(b, float):
                assert a is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b)), (g, w)
            else:
                assert a == b, (g, w)


def assert_workbook_matches(path: Path, rows) -> tuple[int, int]:
    """Every measure of every group of every report sheet equals the independent computation."""
    start, end = window_of(path)
    for report in MEASURES:
        header, body, total = sheet(path, report)
        group_by, measures = MEASURES[report]
        assert header == group_by + [m[0] for m in measures]
        want = expected(rows, start, end, report)
        if not want:
            assert body and str(body[0][0]).startswith("No rows in this window"), body
            continue
        assert_rows_equal(body, want)
        want_total = expected_total(rows, start, end, report)
        assert_rows_equal([total] if total else [], [want_total] if want_total else [])
    return start, end


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# Orders of shops: a keyed source, one report by site (the stale-window and model-based tests).
ORDERS_CONFIG = """
timezone = "Europe/Berlin"

[ingest]
settle_seconds = 0
max_bad_rows = {max_bad_rows}

[[sources]]
name = "orders"
pattern = "inbox/orders/*.csv"
timestamp = "ts"
columns = ["ts", "order_id", "site", "amount"]
types = {{ order_id = "integer", amount = "real" }}
{key}

[[reports]]
name = "by_site"
source = "orders"
group_by = ["site"]
[reports.measures]
orders = "count"
amount = "sum:amount"

[hourly]
catch_up_hours = 1

[daily]
slots = {slots}
"""


def group_rows(path: Path, name: str) -> list[tuple[Any, ...]]:
    """The group rows of a report's sheet, found by its name: no header, no totals row, no 'no rows' line."""
    book = openpyxl.load_workbook(path, read_only=True)
    rows = [tuple(r) for r in book[name].iter_rows(min_row=2, values_only=True)]
    book.close()
    return [r for r in rows if r and r[0] != "Total" and len(r) > 2 and isinstance(r[1], int)]
