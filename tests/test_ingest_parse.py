"""Reading a file: encodings, delimiters, quoting, numbers, nulls, header matching, timestamps."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import write_config, write_csv


def source_config(home: Path, source: str, timezone: str = "Europe/Berlin", max_bad_rows: int = 0) -> None:
    write_config(home, text=f"""
        timezone = "{timezone}"
        [ingest]
        settle_seconds = 0
        max_bad_rows = {max_bad_rows}
        [[sources]]
        name = "data"
        pattern = "inbox/data/*"
    """ + source)


def rows(home: Path, columns: str = "*") -> list[tuple]:
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        return conn.execute(f"SELECT {columns} FROM data ORDER BY _id").fetchall()


def berlin(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Berlin")).timestamp())


def ingest_ok(cli) -> str:
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "level=WARNING" not in result.output, result.output
    return result.output


def test_cp1252_with_encoding(home, cli):
    source_config(home, """
        timestamp = "ts"
        columns = ["ts", "site"]
        encoding = "cp1252"
    """)
    write_csv(home / "inbox/data/a.csv", "ts,site\n2026-03-28 10:00:00,Köln – Süd €\n", encoding="cp1252")
    ingest_ok(cli)
    assert rows(home, "site") == [("Köln – Süd €",)]


def test_utf8_bom_is_dropped_from_the_header(home, cli):
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site"]\n')
    write_csv(home / "inbox/data/a.csv", "\ufeffts,site\n2026-03-28 10:00:00,x\n")
    ingest_ok(cli)
    assert rows(home, "_ts, ts, site") == [(berlin("2026-03-28 10:00:00"), "2026-03-28 10:00:00", "x")]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_delimiter_is_detected(home, cli, delimiter):
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site", "value"]\ntypes = { value = "real" }\n')
    lines = [["ts", "site", "value", "note"], ["2026-03-28 10:00:00", "a,b;c", "1.5", "x y"],
             ["2026-03-28 11:00:00", "d", "2", ""]]
    text = "".join(delimiter.join(f'"{f}"' if any(c in f for c in ",;|") else f for f in line) + "\n"
                   for line in lines)
    write_csv(home / "inbox/data/a.csv", text)
    ingest_ok(cli)
    assert rows(home, "site, value") == [("a,b;c", 1.5), ("d", 2.0)]


def test_quoted_fields_with_embedded_newlines_and_quotes(home, cli):
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "note"]\n')
    write_csv(home / "inbox/data/a.csv",
              'ts,note\r\n2026-03-28 10:00:00,"first line\r\nsecond, with ""quotes"""\r\n2026-03-28 11:00:00,plain\r\n')
    ingest_ok(cli)
    assert rows(home, "note") == [('first line\r\nsecond, with "quotes"',), ("plain",)]


def test_decimal_comma(home, cli):
    source_config(home, """
        timestamp = "ts"
        columns = ["ts", "value", "count"]
        types = { value = "real", count = "integer" }
        decimal = ","
        delimiter = ";"
    """, max_bad_rows=5)
    write_csv(home / "inbox/data/a.csv",
              "ts;value;count\n2026-03-28 10:00:00;1.234,75;1.234\n2026-03-28 11:00:00;3,75;7\n"
              "2026-03-28 12:00:00;-0,5;\n2026-03-28 13:00:00;12.34,5;1\n2026-03-28 14:00:00;1,2,3;1\n")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert rows(home, "value, count") == [(1234.75, 1234), (3.75, 7), (-0.5, None)]
    with open(home / "quarantine/data/a.csv.rejects.csv", newline="", encoding="utf-8") as handle:
        rejects = list(csv.reader(handle))
    assert rejects[1][:2] == ["5", "column 'value': '12.34,5' is not a number with decimal ','"]
    assert rejects[2][:2] == ["6", "column 'value': '1,2,3' is not a number with decimal ','"]


def test_null_values(home, cli):
    source_config(home, """
        timestamp = "ts"
        columns = ["ts", "site", "value"]
        types = { value = "real" }
        null_values = ["", "NA", "-200"]
    """)
    write_csv(home / "inbox/data/a.csv",
              "ts,site,value\n2026-03-28 10:00:00,NA, -200 \n2026-03-28 11:00:00,,NA\n2026-03-28 12:00:00,x,-20\n")
    ingest_ok(cli)
    assert rows(home, "site, value") == [(None, None), (None, None), ("x", -20.0)]


def test_header_matches_case_insensitively_ignoring_spaces(home, cli):
    source_config(home, 'timestamp = "TS"\ncolumns = ["TS", "Site"]\n')
    write_csv(home / "inbox/data/a.csv", " ts ,  SITE ,other\n2026-03-28 10:00:00,x,y\n")
    ingest_ok(cli)
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert [r[1] for r in conn.execute("PRAGMA table_info(data)")] == ["_id", "_ingestion_id", "_ts", "TS", "Site"]
    assert rows(home, '"TS", "Site"') == [("2026-03-28 10:00:00", "x")]


def test_timestamp_from_date_and_time_columns_with_format(home, cli):
    source_config(home, """
        timestamp = ["Date", "Time"]
        timestamp_format = "%d.%m.%Y %H:%M"
        columns = ["Date", "Time", "value"]
    """)
    write_csv(home / "inbox/data/a.csv", "Date;Time;value\n28.03.2026;10:15;1\n29.03.2026;03:30;2\n")
    ingest_ok(cli)
    assert rows(home, "_ts") == [(berlin("2026-03-28 10:15"),), (berlin("2026-03-29 03:30"),)]


def test_timestamp_format_with_offset(home, cli):
    source_config(home, 'timestamp = "ts"\ntimestamp_format = "%Y/%m/%d %H:%M:%S%z"\ncolumns = ["ts"]\n')
    write_csv(home / "inbox/data/a.csv", "ts,x\n2026/03/28 10:00:00+0500,1\n")
    ingest_ok(cli)
    assert rows(home, "_ts") == [(int(datetime.fromisoformat("2026-03-28T05:00:00+00:00").timestamp()),)]


def test_no_timestamp_uses_the_file_modification_time(home, cli):
    source_config(home, 'columns = ["site"]\n')
    path = write_csv(home / "inbox/data/a.csv", "site\nx\ny\n")
    os.utime(path, (1774000000, 1774000000.7))
    ingest_ok(cli)
    assert rows(home, "_ts, site") == [(1774000000, "x"), (1774000000, "y")]


def test_blank_and_all_empty_lines_are_not_rows(home, cli):
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site"]\n')
    write_csv(home / "inbox/data/a.csv",
              "\n\nts,site,x\n\n2026-03-28 10:00:00,a,1\n,,\n   \n\n,\n2026-03-28 11:00:00,b,2\n , \t,\n,,\n")
    output = ingest_ok(cli)
    assert "loaded 2 rows" in output
    assert rows(home, "site") == [("a",), ("b",)]
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT rows_read, rows_rejected FROM ingestion_log").fetchone() == (2, 0)


def test_lines_of_spaces_are_blank_without_a_timestamp_too(home, cli):
    # Without a timestamp column the compiled row loop decides first; it must agree with the check.
    source_config(home, 'columns = ["site", "x"]\n')
    write_csv(home / "inbox/data/a.csv", "site,x\na,1\n  \n , \nb,\n")
    output = ingest_ok(cli)
    assert "loaded 2 rows" in output
    assert rows(home, "site, x") == [("a", "1"), ("b", None)]


def test_header_only_file_loads_no_rows(home, cli):
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site"]\n')
    write_csv(home / "inbox/data/a.csv", "ts,site\n")
    output = ingest_ok(cli)
    assert "loaded 0 rows" in output


def test_a_new_allowlisted_column_is_added_to_the_table(home, cli):
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site"]\n')
    write_csv(home / "inbox/data/a.csv", "ts,site,value\n2026-03-28 10:00:00,a,1\n")
    ingest_ok(cli)
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site", "value"]\ntypes = { value = "integer" }\n')
    write_csv(home / "inbox/data/b.csv", "ts,site,value\n2026-03-28 11:00:00,b,2\n")
    ingest_ok(cli)
    assert rows(home, "site, value") == [("a", None), ("b", 2)]
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site", "value"]\ntypes = { value = "real" }\n')
    result = cli("ingest")
    assert result.exit_code == 2
    assert "sources.data.types.value: the table 'data' stores 'value' as INTEGER, the configuration now says REAL" \
        in result.output


def test_utf16_loads_once_its_encoding_is_set(home, cli):
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site"]\nencoding = "utf-16"\n')
    write_csv(home / "inbox/data/a.csv", "ts\tsite\r2026-03-28 10:00:00\tKöln\r", encoding="utf-16")
    ingest_ok(cli)
    assert rows(home, "site") == [("Köln",)]


def test_utf16_without_its_byte_order_mark_is_quarantined_and_the_run_goes_on(home, cli):
    # "utf-16" reads the byte order from the mark at the start; a file without one cannot be read, and says so.
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts", "site"]\nencoding = "utf-16"\n')
    text = "ts,site\n2026-03-28 10:00:00,Köln\n"
    bare = write_csv(home / "inbox/data/bare.csv", text.encode("utf-16-le"))
    write_csv(home / "inbox/data/marked.csv", text, encoding="utf-16")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert rows(home, "site") == [("Köln",)]
    kept = home / "quarantine" / "data" / "bare.csv"
    assert kept.read_bytes() == text.encode("utf-16-le") and not bare.exists()
    reason = json.loads((kept.parent / "bare.csv.reason.json").read_text(encoding="utf-8"))
    assert reason["reason"].startswith("cannot be decoded as utf-16 (UTF-16 stream does not start with BOM): "
                                       "without a byte order mark"), reason
    assert "set encoding for source 'data'" in reason["reason"] and '"utf-16-le"' in reason["reason"]
    assert reason["first_bad_line"] == 1
    assert f"file={bare}" in result.output and "level=WARNING" in result.output


def test_typed_values_convert_completely_or_the_row_is_bad(home, cli):
    source_config(home, """
        timestamp = "ts"
        columns = ["ts", "i", "r", "t"]
        types = { i = "integer", r = "real" }
        null_values = ["", "NA"]
    """, max_bad_rows=20)
    good = [("7", "1.5", "x", 7, 1.5, "x"), ("+5", " 2 ", " y ", 5, 2.0, " y "), ("-0", "1e3", "", 0, 1000.0, None),
            ("", "NA", "NA", None, None, None), (" ", "  ", "  ", None, None, None),
            ("12", "-.5", "=1+1", 12, -0.5, "=1+1")]
    bad = ["1.0", "1_000", "0x10", "1,5", "seven"], ["inf", "nan", "1_0.5", "1,5", "--1"]
    lines = ["ts,i,r,t"]
    for n, (i, r, t, *_rest) in enumerate(good):
        lines.append(f"2026-03-28 10:00:{n:02d},{i},{r},{t}")
    for n, i in enumerate(bad[0]):
        lines.append(f'2026-03-28 11:00:{n:02d},"{i}",1,x')
    for n, r in enumerate(bad[1]):
        lines.append(f'2026-03-28 12:00:{n:02d},1,"{r}",x')
    write_csv(home / "inbox/data/a.csv", "\n".join(lines) + "\n")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert rows(home, "i, r, t") == [tuple(g[3:]) for g in good]
    with open(home / "quarantine/data/a.csv.rejects.csv", newline="", encoding="utf-8") as handle:
        rejected = list(csv.reader(handle))[1:]
    assert [r[0] for r in rejected] == [str(n) for n in range(len(good) + 2, len(lines) + 1)]
    assert all("is not an integer" in r[1] for r in rejected[:5])
    assert all("is not a number" in r[1] for r in rejected[5:])


def test_timestamp_shapes_through_a_whole_file(home, cli):
    source_config(home, 'timestamp = "ts"\ncolumns = ["ts"]\n', max_bad_rows=20)
    cases = {
        "2026-03-28 10:00:00": "2026-03-28T10:00:00+01:00",
        "2026-03-28T10:00:00": "2026-03-28T10:00:00+01:00",
        "2026-03-28 10:00": "2026-03-28T10:00:00+01:00",
        "2026-03-28 10:00:00.999": "2026-03-28T10:00:00+01:00",
        " 2026-03-28 10:00:05 ": "2026-03-28T10:00:05+01:00",
        "2026-03-28T10:00:00Z": "2026-03-28T10:00:00+00:00",
        "2026-03-28 10:00:00+05:30": "2026-03-28T10:00:00+05:30",
        "2026-03-29 02:59:59": "2026-03-29T02:59:59+01:00",
        "2026-10-25 02:00:00": "2026-10-25T02:00:00+02:00",
        "2026-10-25 03:00:00": "2026-10-25T03:00:00+01:00",
    }
    bad = ["2026-03-28 10:00:60", "2026-03-28 10:60:00", "2026-03-28 24:00:00", "2026-02-29 10:00:00",
           "2026-03-28 1:00:00", "28.03.2026 10:00:00", "2026-03-28 10:00:00 CET", "2026-03-28_10:00:00"]
    text = "ts,n\n" + "".join(f'"{t}",{n}\n' for n, t in enumerate([*cases, *bad]))
    write_csv(home / "inbox/data/a.csv", text)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert rows(home, "_ts") == [(int(datetime.fromisoformat(v).timestamp()),) for v in cases.values()]
    with open(home / "quarantine/data/a.csv.rejects.csv", newline="", encoding="utf-8") as handle:
        rejected = list(csv.reader(handle))[1:]
    assert [r[2] for r in rejected] == bad


def test_a_german_spreadsheet_export(home, cli):
    """cp1252, `;`, CRLF, decimal comma, date and time in two columns, a quoted multi-line note,
    blank and empty lines, a null marker, and a time in the spring-forward gap."""
    source_config(home, """
        timestamp = ["Datum", "Uhrzeit"]
        timestamp_format = "%d.%m.%Y %H:%M"
        columns = ["Datum", "Uhrzeit", "Standort", "Messgröße", "Wert", "Bemerkung"]
        types = { Wert = "real" }
        encoding = "cp1252"
        decimal = ","
        null_values = ["", "k.A."]
    """)
    fixture = Path(__file__).parent / "fixtures" / "export_de_cp1252.csv"
    write_csv(home / "inbox/data/export.csv", fixture.read_bytes())
    output = ingest_ok(cli)
    assert "loaded 4 rows" in output
    assert rows(home, '_ts, "Standort", "Wert", "Bemerkung"') == [
        (berlin("2026-03-28 23:30"), "Köln-Süd", 1234.75, None),
        (berlin("2026-03-29 01:15"), "Köln-Süd", 3.5, "Fühler getauscht;\r\nneu kalibriert"),
        (berlin("2026-03-29 01:30") + 3600, "Köln-Süd", None, "Sprung der Uhr"),  # 02:30 is read as 03:30 CEST
        (berlin("2026-03-29 03:30"), "Düsseldorf", -12.5, "€ Wartung"),
    ]
