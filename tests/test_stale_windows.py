"""Workbooks stay true to the database: every change to the rows makes exactly the windows it
touched stale, whatever their age, and the next plain `hourly`/`daily` rewrites exactly those.

Every test writes workbooks for windows of 2026-06-15 (long before the catch-up range), changes
rows, runs plain `hourly` and `daily`, and checks from the `workbooks` table which workbooks were
written again, and from the files (read back with openpyxl, sheets by name) that each says what
the database holds.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import write_config, write_csv
from reportcheck import ORDERS_CONFIG, about, group_rows


def orders_config(key: str) -> str:
    return ORDERS_CONFIG.format(max_bad_rows=0, key=key, slots='["12:00", "18:00", "24:00"]')


HEADER = "ts,order_id,site,amount\n"
DAY = "2026-06-15"
HOURS = ("10:00", "12:00", "17:00", "18:00", "19:00")
SLOTS = ("12:00", "18:00", "24:00")


def database(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "data" / "csvreport.sqlite3")


def inbox(home: Path) -> Path:
    return home / "inbox" / "orders"


def order_lines(*orders: tuple[str, int, str, float]) -> str:
    """(local time of 2026-06-15, order id, site, amount) -> CSV lines."""
    return "".join(f"{DAY} {at}:00,{order},{site},{amount}\n" for at, order, site, amount in orders)


def write_day(cli) -> dict[str, int]:
    """Workbooks for the hours and slots of the day, on request; returns name -> writes."""
    for hour in HOURS:
        result = cli("hourly", "--hour", f"{DAY} {hour}")
        assert result.exit_code == 0, result.output
    for slot in SLOTS:
        result = cli("daily", "--date", DAY, "--until", slot)
        assert result.exit_code == 0, result.output
    return writes()


HOME: list[Path] = []


@pytest.fixture
def orders(home) -> Path:
    write_config(home, orders_config(key='key = ["order_id"]'))
    HOME[:] = [home]
    return home


def writes() -> dict[str, int]:
    """File name -> how often it was written, for the workbooks of 2026-06-15."""
    with database(HOME[0]) as conn:
        return {Path(path).name: count for path, count in conn.execute(
            "SELECT path, writes FROM workbooks WHERE local_start LIKE ?", (f"{DAY}%",))}


def plain_runs(cli) -> str:
    output = ""
    for command in ("hourly", "daily"):
        result = cli(command)
        assert result.exit_code == 0, result.output
        output += result.output
    return output


def rewritten(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted(name for name in before if after[name] != before[name])


def hourly_name(hour: str) -> str:
    return f"hourly_{DAY.replace('-', '')}_{hour.replace(':', '')}.xlsx"


def daily_name(slot: str) -> str:
    return f"daily_{DAY.replace('-', '')}_{slot.replace(':', '')}.xlsx"


def from_database(home: Path, start: int, end: int) -> list[tuple[Any, ...]]:
    """What the by_site sheet must say for [start, end), computed here from the table."""
    with database(home) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT site, count(*), sum(amount) FROM orders WHERE _ts >= ? AND _ts < ? GROUP BY site ORDER BY site",
            (start, end))]


def assert_every_workbook_agrees(home: Path) -> int:
    """Every workbook on disk equals the aggregate of its window in the database; returns how many."""
    with database(home) as conn:
        books = conn.execute("SELECT path, window_start, window_end FROM workbooks").fetchall()
    for path, start, end in books:
        got = group_rows(home / path, "by_site")
        want = from_database(home, start, end)
        assert [(s, n) for s, n, _ in got] == [(s, n) for s, n, _ in want], (path, got, want)
        for (_, _, a), (_, _, b) in zip(got, want):
            assert a == pytest.approx(b), (path, got, want)
    return len(books)


def test_a_keyed_correction_moving_an_order_from_17_to_19_rewrites_both_hours(orders, cli):
    write_csv(inbox(orders) / "orders.csv", HEADER + order_lines(
        ("17:10", 1, "a", 10), ("17:20", 2, "b", 5), ("19:05", 3, "a", 7), ("10:30", 4, "c", 1)), age=7200)
    assert cli("ingest").exit_code == 0
    before = write_day(cli)
    assert group_rows(orders / "reports" / hourly_name("17:00"), "by_site") == [("a", 1, 10), ("b", 1, 5)]

    write_csv(inbox(orders) / "correction.csv", HEADER + order_lines(("19:40", 1, "a", 11)))
    assert cli("ingest").exit_code == 0
    output = plain_runs(cli)

    after = writes()
    # 17:00 lost order 1, 19:00 got it; the 18:00 and 24:00 slots hold both hours, the 12:00 slot neither.
    assert rewritten(before, after) == sorted([hourly_name("17:00"), hourly_name("19:00"), daily_name("18:00"),
                                               daily_name("24:00")])
    assert group_rows(orders / "reports" / hourly_name("17:00"), "by_site") == [("b", 1, 5)]
    assert group_rows(orders / "reports" / hourly_name("19:00"), "by_site") == [("a", 2, 18)]
    assert "ingestion 2 replaced rows of earlier loads by key" in output
    # The hour the order left says Correction too, though no load's time span touches it.
    assert about(orders / "reports" / hourly_name("17:00"))["correction"].startswith("yes")
    assert about(orders / "reports" / hourly_name("12:00"))["correction"] == "no"
    assert assert_every_workbook_agrees(orders) >= len(before)
    # Nothing is stale any more: the next runs write nothing of that day again.
    plain_runs(cli)
    assert writes() == after


def test_late_data_older_than_the_catch_up_range_rewrites_its_hour_and_days(orders, cli):
    write_csv(inbox(orders) / "first.csv", HEADER + order_lines(("10:15", 1, "a", 3)), age=7200)
    assert cli("ingest").exit_code == 0
    before = write_day(cli)
    write_csv(inbox(orders) / "late.csv", HEADER + order_lines(("10:45", 2, "b", 4)))
    assert cli("ingest").exit_code == 0

    from csvreport import status
    from csvreport.config import load_settings

    facts = status.gather(load_settings(orders)).to_dict()
    stale = sorted(Path(d["path"]).name for d in facts["due_workbooks"] if d["state"] == "stale")
    assert stale == sorted([hourly_name("10:00"), daily_name("12:00"), daily_name("18:00"), daily_name("24:00")])
    assert not any("stale" in p for p in facts["problems"])  # the next runs are due to rewrite them
    later = status.gather(load_settings(orders), now=time.time() + 2 * 3600).to_dict()
    assert any(p.startswith(f"hourly workbook {hourly_name('10:00')} is stale: ingestion 2 arrived")
               for p in later["problems"])

    output = plain_runs(cli)
    assert rewritten(before, writes()) == stale
    assert "reason=stale" in output
    assert group_rows(orders / "reports" / hourly_name("10:00"), "by_site") == [("a", 1, 3), ("b", 1, 4)]
    assert_every_workbook_agrees(orders)
    assert not [d for d in status.gather(load_settings(orders)).to_dict()["due_workbooks"] if d["state"] == "stale"]


def test_a_rewritten_file_makes_stale_the_hours_its_old_and_new_rows_are_in(orders, cli):
    write_config(orders, orders_config(key=""))
    path = inbox(orders) / "export.csv"
    write_csv(path, HEADER + order_lines(("10:05", 1, "a", 1), ("17:05", 2, "a", 2)), age=7200)
    assert cli("ingest").exit_code == 0
    before = write_day(cli)
    # The exporter rewrites the file: the 17:00 row goes, one at 19:00 comes; 10:00 keeps the same row.
    write_csv(path, HEADER + order_lines(("10:05", 1, "a", 1), ("19:05", 3, "a", 3)))
    assert cli("ingest").exit_code == 0
    output = plain_runs(cli)
    # 10:00 is rewritten too: its row was removed with the old version and loaded again with the new.
    assert rewritten(before, writes()) == sorted([hourly_name("10:00"), hourly_name("17:00"), hourly_name("19:00"),
                                                  daily_name("12:00"), daily_name("18:00"), daily_name("24:00")])
    assert "ingestion 1 superseded" in output
    assert_every_workbook_agrees(orders)


def test_purge_and_replay_make_stale_exactly_the_windows_of_their_rows(orders, cli):
    write_csv(inbox(orders) / "good.csv", HEADER + order_lines(("10:05", 1, "a", 1), ("19:05", 2, "a", 2)),
              age=7200)
    write_csv(inbox(orders) / "wrong.csv", HEADER + order_lines(("17:30", 3, "b", 30)), age=7000)
    write_csv(inbox(orders) / "broken.csv", "ts,order,site,amount\n" + order_lines(("18:30", 4, "c", 40)), age=6900)
    result = cli("ingest")
    assert result.exit_code == 0 and "quarantined" in result.output, result.output
    before = write_day(cli)

    (inbox(orders) / "wrong.csv").unlink()
    assert cli("recover", "purge", "2").exit_code == 0
    output = plain_runs(cli)
    after_purge = writes()
    assert rewritten(before, after_purge) == sorted([hourly_name("17:00"), daily_name("18:00"), daily_name("24:00")])
    assert "ingestion 2 purged" in output
    assert group_rows(orders / "reports" / hourly_name("17:00"), "by_site") == []

    fixed = orders / "quarantine" / "orders" / "broken.csv"
    fixed.write_text(HEADER + order_lines(("18:30", 4, "c", 40)), encoding="utf-8")
    result = cli("recover", "replay", str(fixed))
    assert result.exit_code == 0, result.output
    plain_runs(cli)
    assert rewritten(after_purge, writes()) == sorted([hourly_name("18:00"), daily_name("24:00")])
    assert group_rows(orders / "reports" / hourly_name("18:00"), "by_site") == [("c", 1, 40)]
    assert_every_workbook_agrees(orders)


def test_archive_restore_makes_its_windows_stale_and_archived_ones_are_never_rewritten(orders, cli):
    pytest.importorskip("pyarrow")
    write_csv(inbox(orders) / "june.csv", HEADER + order_lines(("10:05", 1, "a", 1), ("19:05", 2, "a", 2)),
              age=7200)
    assert cli("ingest").exit_code == 0
    before = write_day(cli)
    result = cli("archive", "--before", "2026-07")
    assert result.exit_code == 0, result.output
    # A late row for the archived month: its windows are stale, but archived, so not rewritten.
    write_csv(inbox(orders) / "late.csv", HEADER + order_lines(("17:05", 3, "b", 3)))
    assert cli("ingest").exit_code == 0
    plain_runs(cli)
    assert writes() == before
    from csvreport import status
    from csvreport.config import load_settings

    later = status.gather(load_settings(orders), now=time.time() + 2 * 3600).to_dict()
    assert not any("stale" in p for p in later["problems"]), later["problems"]

    result = cli("archive", "restore", "--month", "2026-06")
    assert result.exit_code == 0, result.output
    assert cli("status", "--check").exit_code == 0  # stale since the restore, for the next runs to rewrite
    later = status.gather(load_settings(orders), now=time.time() + 2 * 3600).to_dict()
    assert any("workbooks are stale" in p for p in later["problems"]), later["problems"]
    plain_runs(cli)
    # Restored rows at 10:00 and 19:00, the late row at 17:00: their hours and every slot.
    assert rewritten(before, writes()) == sorted([hourly_name("10:00"), hourly_name("17:00"), hourly_name("19:00"),
                                                  daily_name("12:00"), daily_name("18:00"), daily_name("24:00")])
    assert_every_workbook_agrees(orders)


def test_emailed_workbooks_rewritten_as_stale_go_out_as_corrections(orders, cli):
    """The stale rewrite goes through the same delivery queue as every workbook (mail.queue)."""
    text = (orders / "config" / "settings.toml").read_text(encoding="utf-8") + (
        '\n[email]\nenabled = true\nhost = "127.0.0.1"\nport = 1\nsecurity = "none"\nsender = "r@example.com"\n'
        'hourly_to = ["ops@example.com"]\ntimeout = 1\n')
    write_config(orders, text)
    write_csv(inbox(orders) / "orders.csv", HEADER + order_lines(("17:10", 1, "a", 10)), age=7200)
    assert cli("ingest").exit_code == 0
    assert cli("hourly", "--hour", f"{DAY} 17:00").exit_code == 0
    with database(orders) as conn:
        conn.execute("UPDATE email_delivery SET status = 'sent'")  # as if the SMTP server had taken it
    write_csv(inbox(orders) / "correction.csv", HEADER + order_lines(("19:40", 1, "a", 11)))
    assert cli("ingest").exit_code == 0
    assert cli("hourly").exit_code == 0
    with database(orders) as conn:
        queued = conn.execute("SELECT subject, correction FROM email_delivery WHERE path LIKE ? ORDER BY id",
                              (f"%{hourly_name('17:00')}",)).fetchall()
    assert len(queued) == 2 and queued[-1][1] == 1 and queued[-1][0].startswith("Correction:"), queued



def test_a_dense_load_records_only_the_quarter_hours_holding_its_rows(orders, cli):
    """A large file is probed quarter by quarter through the time index; a small one is read: same answer."""
    dense = [(f"10:{i % 15:02d}", 1000 + i, "a", 1) for i in range(400)] + [("19:05", 5000, "b", 2)]
    write_csv(inbox(orders) / "dense.csv", HEADER + order_lines(*dense), age=7200)
    write_csv(inbox(orders) / "sparse.csv", HEADER + order_lines(("12:20", 6000, "c", 1), ("12:40", 6001, "c", 1)),
              age=7000)
    assert cli("ingest").exit_code == 0
    with database(orders) as conn:
        spans = conn.execute("SELECT cause, start_ts, end_ts FROM window_changes ORDER BY id").fetchall()
    at = {f"{h:02d}:{m:02d}": int(datetime.fromisoformat(f"{DAY}T{h:02d}:{m:02d}:00+02:00").timestamp())
          for h in range(24) for m in (0, 15, 30, 45)}
    assert spans == [("ingestion 1 arrived", at["10:00"], at["10:15"]),
                     ("ingestion 1 arrived", at["19:00"], at["19:15"]),
                     ("ingestion 2 arrived", at["12:15"], at["12:45"])]
