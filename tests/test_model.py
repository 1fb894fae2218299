"""Model-based test: random sequences of exporter and operator actions against a model.

A hypothesis state machine drives csvreport through its command line: an exporter writes
new files into its own drop folder outside the home (the source's pattern is absolute),
rewrites or appends to them, sends keyed corrections that move an order to another hour,
drops the same content under a new name, delivers a file csvreport cannot load and later
fixes it in place or removes it; an operator ingests (sometimes with a SIGKILL at a random
instant of a separate `python -m csvreport ingest`, then a normal ingest that finishes the
job), purges a load, replays a fixed quarantined file (refused when a fixed original was
loaded since), writes workbooks on request and runs plain `hourly` and `daily`. The model
says what the table must hold. After every step:

- every row of every file ingested is in the table (keyed: the newest load of its key wins),
  in its file's rejects file, or in quarantine, exactly once;
- after a plain `hourly`/`daily`, every workbook of that kind on disk equals the aggregate
  this test computes from the database (sheets read back by the report's name);
- nothing outside the home changed: the exporter's drop folder holds exactly what the exporter
  wrote there, byte for byte (a bad file is copied into quarantine and its original stays,
  never moved), and a folder beside it is untouched.

All event times lie on 2026-06-15, long before now, so every window is complete and far
older than the catch-up range. CI runs a fixed, derandomized set of examples (well under
two minutes); set CSVREPORT_STATEFUL_EXAMPLES (e.g. 200) to run that many, with random
seeds, CSVREPORT_STATEFUL_STEPS for longer sequences, and CSVREPORT_STATEFUL_SHRINK=1 to let
hypothesis shrink a failing sequence (minutes) before it reports it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)
from typer.testing import CliRunner

from conftest import REPO
from csvreport.cli import app
from reportcheck import ORDERS_CONFIG, group_rows

CONFIG = ORDERS_CONFIG.format(max_bad_rows=1, key='key = ["order_id"]', slots='["12:00", "24:00"]')
RELATIVE_PATTERN = 'pattern = "inbox/orders/*.csv"'
assert RELATIVE_PATTERN in CONFIG
ZONE = ZoneInfo("Europe/Berlin")
DAY = "2026-06-15"
HOURS = range(9, 15)
SITES = ("a", "b", "c")
EXAMPLES = int(os.environ.get("CSVREPORT_STATEFUL_EXAMPLES", "0"))
STEPS = int(os.environ.get("CSVREPORT_STATEFUL_STEPS", "0"))
FIRST_MTIME = time.time() - 10 * 86400  # every file settled, and dated in the order it was written


@dataclass
class Export:
    """A file in the drop folder: its rows (order id, hour, minute, site, amount text; 'x' is a bad value)."""

    rows: list[tuple[int, int, int, str, str]]
    header_ok: bool = True
    frozen: bool = False  # its content lies in the drop folder under two names: never changed again
    copy_of: Optional[str] = None
    written: int = 0  # write counter: the order csvreport reads pending files in (by mtime)

    def text(self) -> str:
        header = "ts,order_id,site,amount\n" if self.header_ok else "ts,order_ref,site,amount\n"
        return header + "".join(f"{DAY} {h:02d}:{m:02d}:00,{oid},{site},{amount}\n"
                                for oid, h, m, site, amount in self.rows)


def epoch(hour: int, minute: int) -> int:
    return int(datetime.fromisoformat(f"{DAY} {hour:02d}:{minute:02d}:00").replace(tzinfo=ZONE).timestamp())


@dataclass
class Model:
    files: dict[str, Export] = field(default_factory=dict)  # in the drop folder
    pending: set[str] = field(default_factory=set)  # written since the last ingest
    table: dict[int, tuple[int, str, float, str]] = field(default_factory=dict)  # id -> ts, site, amount, owner
    rejected: dict[str, set[int]] = field(default_factory=dict)  # file -> order ids of its rejected rows
    quarantined: dict[str, Export] = field(default_factory=dict)  # a copy in quarantine; the original stays
    # Quarantined names whose original the exporter fixed in place and csvreport loaded: their copy in
    # quarantine may not be replayed over that newer version (recover replay refuses and says so).
    loaded_after_quarantine: set[str] = field(default_factory=set)

    def load(self, name: str, export: Export) -> None:
        """What loading a version of `name` does: its earlier version's rows go, its rows replace by key."""
        for oid in [oid for oid, row in self.table.items() if row[3] == name]:
            del self.table[oid]
        if name in self.quarantined:
            self.loaded_after_quarantine.add(name)
        bad = set()
        for oid, hour, minute, site, amount in export.rows:
            if amount == "x":
                bad.add(oid)
            else:
                self.table[oid] = (epoch(hour, minute), site, float(amount), name)
        self.rejected[name] = bad

    def ingest(self) -> None:
        for name in sorted(self.pending, key=lambda n: self.files[n].written):
            export = self.files[name]
            if not export.header_ok:
                self.quarantined[name] = export  # copied: outside the home, the original is not csvreport's
            elif export.copy_of is None:  # a copy is known content: skipped
                self.load(name, export)
        self.pending.clear()


class Pipeline(RuleBasedStateMachine):
    base: Path  # set by the test: a folder under its tmp_path

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(dir=self.base))
        self.home = self.root / "home"
        # The exporter's drop folder is a sibling of the home: csvreport may read it, never change it.
        self.inbox = self.root / "exporter" / "orders"
        self.inbox.mkdir(parents=True)
        (self.home / "config").mkdir(parents=True)
        pattern = f"pattern = {json.dumps(str(self.inbox / '*.csv'))}"  # a TOML basic string
        (self.home / "config" / "settings.toml").write_text(CONFIG.replace(RELATIVE_PATTERN, pattern),
                                                           encoding="utf-8")
        (self.inbox / "README.txt").write_text("not matched by the pattern\n")
        self.outside = self.root / "outside"
        (self.outside / "drop").mkdir(parents=True)
        (self.outside / "drop" / "orders.csv").write_text("ts,order_id,site,amount\n2026-06-15 10:00:00,1,a,1\n")
        (self.outside / "notes.txt").write_text("not csvreport's\n")
        self.outside_before = self.snapshot(self.outside)
        self.exported = self.snapshot(self.inbox)  # what the exporter's own actions left in its folder
        self.model = Model()
        self.next_id = 1
        self.next_file = 1
        self.writes = 0
        self.runner = CliRunner()

    # -- helpers ---------------------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        result = self.runner.invoke(app, ["--home", str(self.home), *args], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    @staticmethod
    def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
        return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
                for p in sorted(folder.rglob("*")) if p.is_file()}

    def write(self, name: str, export: Export, append: Optional[str] = None) -> None:
        self.writes += 1
        export.written = self.writes
        path = self.inbox / name
        if append is None:
            path.write_text(export.text(), encoding="utf-8")
        else:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(append)
        then = FIRST_MTIME + self.writes
        os.utime(path, (then, then))
        self.exported[name] = (path.read_bytes(), path.stat().st_mtime_ns)
        self.model.files[name] = export
        self.model.pending.add(name)

    def new_rows(self, hours: list[int], site: str, bad: bool) -> list[tuple[int, int, int, str, str]]:
        rows = []
        for i, hour in enumerate(hours):
            rows.append((self.next_id, hour, (7 * self.next_id) % 60, site, f"{self.next_id % 97 + i * 0.25}"))
            self.next_id += 1
        if bad:
            rows.append((self.next_id, hours[0] if hours else HOURS[0], 59, site, "x"))
            self.next_id += 1
        return rows

    def settled(self, data: st.DataObject, allow_frozen: bool = False) -> Optional[str]:
        """A good file loaded as it is now, or None."""
        names = sorted(n for n, e in self.model.files.items() if n not in self.model.pending and e.header_ok
                       and e.copy_of is None and (allow_frozen or not e.frozen))
        return data.draw(st.sampled_from(names)) if names else None

    def file_name(self) -> str:
        self.next_file += 1
        return f"export_{self.next_file:03d}.csv"

    # -- exporter ----------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self.cli("ingest")  # creates the database: nothing to load yet

    @rule(hours=st.lists(st.sampled_from(HOURS), min_size=1, max_size=4), site=st.sampled_from(SITES),
          bad=st.booleans())
    def new_file(self, hours: list[int], site: str, bad: bool) -> None:
        self.write(self.file_name(), Export(self.new_rows(hours, site, bad)))

    @rule(data=st.data(), keep=st.integers(0, 3), hours=st.lists(st.sampled_from(HOURS), max_size=2),
          bad=st.booleans())
    def rewrite_file(self, data: st.DataObject, keep: int, hours: list[int], bad: bool) -> None:
        names = sorted(n for n, e in self.model.files.items() if e.header_ok and not e.frozen and e.copy_of is None)
        if not names:
            return
        name = data.draw(st.sampled_from(names))
        old = self.model.files[name]
        kept = [(oid, h, m, site, f"{float(amount) + 1}") for oid, h, m, site, amount in old.rows
                if amount != "x"][:keep]
        rows = kept + (self.new_rows(hours, "b", bad) if hours or bad or not kept else [])
        if not rows:
            rows = self.new_rows([HOURS[0]], "b", False)
        self.write(name, Export(rows))

    @rule(data=st.data(), hours=st.lists(st.sampled_from(HOURS), min_size=1, max_size=2))
    def append_to_file(self, data: st.DataObject, hours: list[int]) -> None:
        names = sorted(n for n, e in self.model.files.items() if e.header_ok and not e.frozen and e.copy_of is None)
        if not names:
            return
        name = data.draw(st.sampled_from(names))
        old = self.model.files[name]
        added = self.new_rows(hours, "c", False)
        export = Export(old.rows + added)
        self.write(name, export, append=Export(added).text().split("\n", 1)[1])

    @precondition(lambda self: self.model.table)
    @rule(data=st.data(), site=st.sampled_from(SITES))
    def keyed_correction(self, data: st.DataObject, site: str) -> None:
        """A correction of one order, moved to another hour: both hours' workbooks change."""
        oid = data.draw(st.sampled_from(sorted(self.model.table)))
        hour_now = datetime.fromtimestamp(self.model.table[oid][0], ZONE).hour
        hour = data.draw(st.sampled_from([h for h in HOURS if h != hour_now]))
        # Its own amount: the same content under a new name would be skipped as known.
        self.write(self.file_name(), Export([(oid, hour, 30, site, f"{self.writes + 0.5}")]))

    @rule(data=st.data())
    def same_content_new_name(self, data: st.DataObject) -> None:
        name = self.settled(data, allow_frozen=True)
        if name is None:
            return
        original = self.model.files[name]
        original.frozen = True
        copy = self.file_name()
        self.write(copy, Export(list(original.rows), frozen=True, copy_of=name))
        assert (self.inbox / copy).read_bytes() == (self.inbox / name).read_bytes()

    @rule(hours=st.lists(st.sampled_from(HOURS), min_size=1, max_size=3))
    def bad_file(self, hours: list[int]) -> None:
        self.write(self.file_name(), Export(self.new_rows(hours, "a", False), header_ok=False))

    @rule(data=st.data())
    def fix_bad_original(self, data: st.DataObject) -> None:
        """The exporter replaces a quarantined bad file by a good one under the same name: it is loaded."""
        names = sorted(n for n, e in self.model.files.items() if not e.header_ok and n in self.model.quarantined
                       and n not in self.model.pending)
        if not names:
            return
        self.fix_in_place(data.draw(st.sampled_from(names)))

    def fix_in_place(self, name: str) -> None:
        self.write(name, Export(list(self.model.files[name].rows)))

    @rule(data=st.data())
    def remove_bad_original(self, data: st.DataObject) -> None:
        """The exporter clears away a bad file csvreport copied into quarantine (docs: remove it yourself)."""
        names = sorted(n for n, e in self.model.files.items() if not e.header_ok and n not in self.model.pending)
        if not names:
            return
        name = data.draw(st.sampled_from(names))
        (self.inbox / name).unlink()
        del self.exported[name]
        del self.model.files[name]

    # -- operator ----------------------------------------------------------------------------------

    @rule()
    def ingest(self) -> None:
        self.cli("ingest")
        self.model.ingest()

    @rule(delay=st.floats(0.0, 0.4))  # such an ingest lasts about 0.3 s: most kills land inside it
    def ingest_killed_then_finished(self, delay: float) -> None:
        env = {**os.environ, "CSVREPORT_HOME": str(self.home), "PYTHONPATH": str(REPO)}
        process = subprocess.Popen([sys.executable, "-m", "csvreport", "--quiet", "ingest"], cwd=self.home, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.cli("ingest")  # killed anywhere, the bad original outside the home stays: it was never csvreport's
        self.model.ingest()

    @rule(data=st.data())
    def purge(self, data: st.DataObject) -> None:
        name = self.settled(data)
        if name is None:
            return
        (self.inbox / name).unlink()
        del self.exported[name]
        with sqlite3.connect(self.home / "data" / "csvreport.sqlite3") as conn:
            (ingestion,) = conn.execute("SELECT id FROM ingestion_log WHERE path LIKE ? AND status = 'loaded'",
                                        (f"%/{name}",)).fetchone()
        conn.close()
        self.cli("recover", "purge", str(ingestion))
        del self.model.files[name]
        self.model.loaded_after_quarantine.discard(name)
        for oid in [oid for oid, row in self.model.table.items() if row[3] == name]:
            del self.model.table[oid]
        self.model.rejected.pop(name, None)

    @precondition(lambda self: self.model.quarantined)
    @rule(data=st.data())
    def replay_fixed(self, data: st.DataObject) -> None:
        self.replay(data.draw(st.sampled_from(sorted(self.model.quarantined))))

    def replay(self, name: str) -> None:
        """The operator fixes the copy in quarantine and replays it."""
        fixed = Export(self.model.quarantined[name].rows)
        (self.home / "quarantine" / "orders" / name).write_text(fixed.text(), encoding="utf-8")
        output = self.cli("recover", "replay", str(self.home / "quarantine" / "orders" / name))
        if name in self.model.loaded_after_quarantine:
            assert "not replayed: a newer version of" in output, output  # the copy stays in quarantine
            return
        del self.model.quarantined[name]
        self.model.load(name, fixed)  # its bad original, if the exporter left it, stays and is not read again

    @rule(hour=st.sampled_from(HOURS))
    def hourly_on_request(self, hour: int) -> None:
        self.cli("hourly", "--hour", f"{DAY} {hour:02d}:00")

    @rule(slot=st.sampled_from(["12:00", "24:00"]))
    def daily_on_request(self, slot: str) -> None:
        self.cli("daily", "--date", DAY, "--until", slot)

    @rule()
    def hourly(self) -> None:
        self.cli("hourly")
        self.check_workbooks("hourly")

    @rule()
    def daily(self) -> None:
        self.cli("daily")
        self.check_workbooks("daily")

    # -- invariants --------------------------------------------------------------------------------

    def check_workbooks(self, kind: str) -> None:
        """Every workbook of `kind` on disk equals the aggregate of its window computed from the database."""
        with sqlite3.connect(self.home / "data" / "csvreport.sqlite3") as conn:
            books = {Path(p).name: (s, e) for p, s, e in conn.execute(
                "SELECT path, window_start, window_end FROM workbooks WHERE kind = ?", (kind,))}
            on_disk = sorted(p.name for p in (self.home / "reports").glob(f"{kind}_*.xlsx"))
            assert set(on_disk) <= set(books), on_disk
            for name in on_disk:
                start, end = books[name]
                want = [tuple(r) for r in conn.execute(
                    "SELECT site, count(*), sum(amount) FROM orders WHERE _ts >= ? AND _ts < ? GROUP BY site "
                    "ORDER BY site", (start, end))]
                got = group_rows(self.home / "reports" / name, "by_site")
                assert [r[:2] for r in got] == [r[:2] for r in want], (name, got, want)
                assert all(abs(g[2] - w[2]) < 1e-9 for g, w in zip(got, want)), (name, got, want)
        conn.close()

    @invariant()
    def every_row_exactly_once(self) -> None:
        database = self.home / "data" / "csvreport.sqlite3"
        if not database.exists():
            return
        with sqlite3.connect(database) as conn:
            rows = conn.execute("SELECT t.order_id, t._ts, t.site, t.amount, l.path FROM orders t "
                                "JOIN ingestion_log l ON l.id = t._ingestion_id").fetchall()
            table = {oid: (ts, site, amount, Path(path).name) for oid, ts, site, amount, path in rows}
            assert len(table) == len(rows)  # each order once
            assert table == self.model.table
            rejects = {Path(p).name: r for p, r in conn.execute(
                "SELECT path, rejects_path FROM ingestion_log WHERE status = 'loaded'")}
            # A bad original left outside the home is remembered by content: quarantined once, never again.
            recorded = sorted(Path(p).name for (p,) in conn.execute(
                "SELECT path FROM ingestion_log WHERE status = 'quarantined'"))
        conn.close()
        assert recorded == sorted(self.model.quarantined), recorded
        for name, bad in self.model.rejected.items():
            path = rejects.get(name)
            if not bad:
                assert path is None, (name, path)
                continue
            with open(path, newline="", encoding="utf-8") as handle:
                assert {int(r["order_id"]) for r in csv.DictReader(handle)} == bad, (name, path)
        folder = self.home / "quarantine" / "orders"
        held = sorted(p.name for p in folder.glob("*.csv") if not p.name.endswith(".rejects.csv")) \
            if folder.exists() else []
        assert held == sorted(self.model.quarantined)
        for name, export in self.model.quarantined.items():
            lines = (folder / name).read_text(encoding="utf-8").splitlines()
            assert lines[1:] == export.text().splitlines()[1:]

    @invariant()
    def nothing_outside_the_home_changed(self) -> None:
        assert self.snapshot(self.outside) == self.outside_before
        found = self.snapshot(self.inbox)
        assert sorted(found) == sorted(self.exported), "the exporter's drop folder gained or lost files"
        for name, (content, mtime_ns) in self.exported.items():
            assert found[name][0] == content, f"{name} in the exporter's drop folder was changed"
            assert found[name][1] == mtime_ns, f"{name} in the exporter's drop folder was touched"

    def teardown(self) -> None:
        if (self.home / "data" / "csvreport.sqlite3").exists():
            # A last ingest loads (or quarantines) what the sequence left pending: the invariants hold after it too.
            self.ingest()
            self.hourly()
            self.daily()
            self.every_row_exactly_once()
            self.nothing_outside_the_home_changed()


def test_random_sequences_keep_every_row_and_every_workbook_true(tmp_path):
    Pipeline.base = tmp_path
    chosen = settings(max_examples=EXAMPLES or 10, stateful_step_count=STEPS or 30, derandomize=not EXAMPLES,
                      deadline=None, database=None, print_blob=True,
                      # Shrinking a failure of this machine takes minutes: only when asked for (see above).
                      phases=[p for p in Phase if p != Phase.shrink or os.environ.get("CSVREPORT_STATEFUL_SHRINK")],
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    run_state_machine_as_test(Pipeline, settings=chosen)


def test_a_bad_original_fixed_in_place_is_loaded_and_its_copy_in_quarantine_not_replayed_over_it(tmp_path):
    """A sequence the random ones seldom reach, step by step: a bad file outside the home is copied into
    quarantine and stays; the exporter fixes it in place and it is loaded; replaying the copy is refused."""
    Pipeline.base = tmp_path
    machine = Pipeline()
    machine.start()
    machine.bad_file([9, 10])
    machine.ingest()
    (name,) = machine.model.quarantined
    steps = [lambda: machine.fix_in_place(name), machine.ingest, lambda: machine.replay(name), machine.hourly,
             machine.daily]
    for step in steps:
        step()
        machine.every_row_exactly_once()
        machine.nothing_outside_the_home_changed()
    assert (machine.inbox / name).is_file() and name in machine.model.quarantined
    assert {row[3] for row in machine.model.table.values()} == {name}
