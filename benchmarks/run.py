"""Benchmark csvreport against its performance targets, each beside its reference.

Generates its own seeded data under benchmarks/.work/ (git-ignored, reused between runs),
runs every target and the reference it is measured against, and prints one table of
figures and ratios. Run from the repository root:

    python3 benchmarks/run.py                 # everything, full sizes (about 17 minutes on 2 cores,
                                              # 3 more the first time, to generate the data)
    python3 benchmarks/run.py --quick         # everything at small sizes (about 10 seconds)
    python3 benchmarks/run.py --only ingest,skip --rows 200000
    python3 benchmarks/run.py --only ingest --rounds 3   # fewer rounds of the ingest target
    python3 benchmarks/run.py --only ingest --code DIR   # a version unpacked in DIR, for before/after

Targets: ingest (1 M rows in eight spellings of their times, and shuffled, vs the sqlite3
shell's .import of the same file, in rounds), memory (peak PSS of ingest and its helper for
1 M and 5 M rows), skip (a run with nothing new over 10,000 loaded files), reports (hourly
--hour, status, daily and a 2,400-row workbook on a 10 M-row database), imports (a command
that writes no workbook does not import openpyxl), choices (what each design choice of the
load path buys). The figures of a run and their meaning: docs/performance.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator, Optional
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"
SEED = 20260329
ZONE = "Europe/Berlin"
START = datetime(2026, 3, 25)  # the span crosses the spring-forward change of 2026-03-29
COLUMNS = ["timestamp", "site", "device", "metric", "value", "qty", "status", "note"]
TYPED_TABLE = ("CREATE TABLE bench (timestamp TEXT, site TEXT, device TEXT, metric TEXT, value REAL, "
               "qty INTEGER, status TEXT, note TEXT)")
NOTES = ["", "", "", "", "ok", "geprüft", "Sensor neu kalibriert", "Filter getauscht", 'Kunde sagt "dringend"',
         "Zeile 1\nZeile 2", "Température élevée – Ölstand prüfen", "東京 センサー", 'a "quoted", comma',
         "tjänst klar\r\nnästa"]
METRICS = ["temperature", "humidity", "pressure", "co2", "voltage", "current"]
STATUSES = ["ok", "ok", "ok", "ok", "warn", "error"]


@dataclass(frozen=True)
class Spelling:
    """How a file spells its event times: the same rows, other bytes, another configuration."""

    name: str
    shown: str  # for the table
    fmt: str  # strftime of the file's timestamp field(s)
    timestamp_format: Optional[str] = None  # the source's timestamp_format
    joined: bool = False  # date and time in two columns: timestamp = ["date", "time"]
    shuffled: bool = False  # the same rows in no time order: no limit, a figure to watch (the index on _ts)

    @property
    def columns(self) -> list[str]:
        return ["date", "time", *COLUMNS[1:]] if self.joined else COLUMNS

    def cells(self, moment: datetime) -> list[str]:
        if self.joined:
            return [moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M:%S")]
        if self.fmt == "offset":  # the local time with its offset, as systems that know their zone write it
            return [moment.replace(tzinfo=ZoneInfo(ZONE), fold=0).isoformat(timespec="seconds")]
        if self.fmt == "millis":
            return [f"{moment:%Y-%m-%d %H:%M:%S}.{moment.second * 37 % 1000:03d}"]
        if self.fmt == "unpadded":  # as spreadsheets write it: no leading zeros before the minute
            return [f"{moment.month}/{moment.day}/{moment.year} {moment.hour}:{moment:%M:%S}"]
        return [moment.strftime(self.fmt)]


SPELLINGS = {s.name: s for s in (
    Spelling("iso", "2026-11-01 00:00:00, no timestamp_format", "%Y-%m-%d %H:%M:%S"),
    Spelling("iso-format", '2026-11-01 00:00:00, "%Y-%m-%d %H:%M:%S"', "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"),
    Spelling("day-first", '01.11.2026 00:00:00, "%d.%m.%Y %H:%M:%S"', "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S"),
    Spelling("us-12h", '11/01/2026 12:00:00 AM, "%m/%d/%Y %I:%M:%S %p"', "%m/%d/%Y %I:%M:%S %p",
             "%m/%d/%Y %I:%M:%S %p"),
    Spelling("joined", '2026-11-01,00:00:00, timestamp = ["date", "time"]', "", joined=True),
    Spelling("iso-offset", "2026-11-01T00:00:00+01:00, no timestamp_format", "offset"),
    Spelling("iso-millis", "2026-11-01 00:00:00.123, no timestamp_format", "millis"),
    Spelling("us-unpadded", '11/1/2026 0:00:00, "%m/%d/%Y %H:%M:%S"', "unpadded", "%m/%d/%Y %H:%M:%S"),
    Spelling("shuffled", "2026-11-01 00:00:00, the rows in no time order", "%Y-%m-%d %H:%M:%S", shuffled=True),
)}
ISO = SPELLINGS["iso"]


def typed_table(spelling: Spelling) -> str:
    """The shell's target table for a spelling: the same types as csvreport's, one column per field."""
    stamps = "date TEXT, time TEXT" if spelling.joined else "timestamp TEXT"
    return TYPED_TABLE.replace("timestamp TEXT", stamps)


# ---------------------------------------------------------------- results table

@dataclass
class Figure:
    target: str
    what: str
    value: float
    unit: str
    reference: Optional[float] = None
    ref_what: str = ""
    limit: Optional[float] = None  # on the ratio when there is a reference, else on the value
    note: str = ""
    passed: Optional[bool] = None  # for a yes/no target

    @property
    def ratio(self) -> Optional[float]:
        return self.value / self.reference if self.reference else None

    @property
    def verdict(self) -> str:
        if self.passed is not None:
            return "PASS" if self.passed else "FAIL"
        if self.limit is None:
            return ""
        measured = self.ratio if self.reference else self.value
        return "PASS" if measured <= self.limit else "FAIL"


FIGURES: list[Figure] = []


def record(figure: Figure) -> None:
    FIGURES.append(figure)
    ratio = f" = {figure.ratio:.2f} x {figure.ref_what}" if figure.reference else ""
    limit = f" (limit {figure.limit:g}{' x' if figure.reference else ' ' + figure.unit})" if figure.limit else ""
    print(f"  {figure.what}: {figure.value:.3f} {figure.unit}{ratio}{limit} {figure.verdict} {figure.note}".rstrip(),
          flush=True)


def print_table() -> None:
    print("\n| target | measurement | value | reference | ratio | limit | verdict |")
    print("|---|---|---|---|---|---|---|")
    for f in FIGURES:
        ref = f"{f.reference:.3f} {f.unit} ({f.ref_what})" if f.reference else ""
        ratio = f"{f.ratio:.2f}" if f.reference else ""
        limit = "" if f.limit is None else (f"≤ {f.limit:g} ×" if f.reference else f"< {f.limit:g} {f.unit}")
        print(f"| {f.target} | {f.what}{' — ' + f.note if f.note else ''} | {f.value:.3f} {f.unit} | {ref} | "
              f"{ratio} | {limit} | {f.verdict} |")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    shell = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout.split(" ")[0] \
        if shutil.which("sqlite3") else "absent"
    return (f"{platform.node()}: {os.cpu_count()} cores, {cpu}; Linux {platform.release()}; "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version} (module), "
            f"sqlite3 shell {shell}; load average {load}")


# ---------------------------------------------------------------- processes

@dataclass
class Child:
    seconds: float
    max_rss_mb: float
    stdout: str
    stderr: str
    peak_pss_mb: Optional[float] = None  # the process and its helpers together (sampled), when asked for
    cpu: float = 0.0  # user + system seconds of the process and the children it waited for (its helper)


def _tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            pass
    return found


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared pages split among the processes sharing them, so a sum is real memory."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_child(argv: list[str], env: Optional[dict] = None, stdin: Optional[str] = None,
              sample_memory: bool = False) -> Child:
    """Run one process; its wall time and its own peak RSS (from wait4: this child only).

    With `sample_memory`, the PSS of the process and its descendants (csvreport's helper)
    is summed every 10 ms and the peak reported: RSS counts pages shared after a fork twice.
    """
    # Started in WORK: `python -m` and `-c` put the current directory first on sys.path, and
    # csvreport must come from CODE (PYTHONPATH), not from a checkout that happens to be there.
    WORK.mkdir(parents=True, exist_ok=True)
    peak = [0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as feed:
        feed.write((stdin or "").encode("utf-8"))
        feed.seek(0)
        # Each run starts with nothing left to write back from the one before: after a minute of
        # runs that each write 100-300 MB, the kernel's writeback of earlier runs competes with the
        # measured one (seen: +15 % CPU for every loader, from the fifth spelling of the ingest on).
        os.sync()
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=feed, stdout=out, stderr=err, env=env, cwd=WORK)
        sampler = None
        if sample_memory:
            def sample() -> None:
                while proc.returncode is None:
                    peak[0] = max(peak[0], sum(_pss_kib(pid) for pid in _tree(proc.pid)))
                    time.sleep(0.01)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler is not None:
            sampler.join()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(argv)}\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return Child(seconds, usage.ru_maxrss / 1024, stdout, stderr,  # ru_maxrss: KiB on Linux
                 peak[0] / 1024 if sample_memory else None, usage.ru_utime + usage.ru_stime)


CODE = REPO  # where children import csvreport from (--code: an older version, for before/after figures)


def compile_bytecode() -> None:
    """Compile csvreport's modules as `pip install` does, so that no measured run compiles them from source.

    Where PYTHONDONTWRITEBYTECODE is set (or the folder is not writable), the import system
    never keeps what it compiles: every command would compile csvreport's modules again,
    0.03 s that an installed csvreport does not spend. It still reads the bytecode found here.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(CODE / "csvreport")], check=True)


def child_env(home: Path) -> dict:
    return dict(os.environ, CSVREPORT_HOME=str(home), PYTHONPATH=str(CODE))


def csvreport(home: Path, *args: str, sample_memory: bool = False, env: Optional[dict] = None) -> Child:
    env = {**child_env(home), **(env or {})}
    return run_child([sys.executable, "-m", "csvreport", "--quiet", *args], env=env, sample_memory=sample_memory)


def median_time(repeat: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeat))


# ---------------------------------------------------------------- data

def bench_csv(rows: int, spelling: Spelling = ISO) -> Path:
    """A seeded export of `rows` rows: quotes, embedded newlines, non-ASCII; ~80 bytes a row.

    Every spelling holds the same rows; only the bytes of the event times differ.
    """
    path = WORK / (f"bench_{rows}.csv" if spelling is ISO else f"bench_{rows}_{spelling.name}.csv")
    if path.exists():
        return path
    if spelling.shuffled and not os.environ.get("BENCH_MAKE_DATA"):
        # Shuffling holds every row in memory: done in a child, so that this process stays small (a child
        # forked from it starts with its memory, which the peak RSS of csvreport's runs would then show).
        subprocess.run([sys.executable, "-c", f"import run; run.bench_csv({rows}, run.SPELLINGS[{spelling.name!r}])"],
                       cwd=Path(__file__).parent, env=dict(os.environ, BENCH_MAKE_DATA="1"), check=True)
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    span = 10 * 86400
    step = span / rows
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(spelling.columns)
        base = START
        made = ((*spelling.cells(base + timedelta(seconds=int(i * step))), f"site-{rng.randrange(40):02d}",
                 f"dev-{rng.randrange(2000):04d}-{rng.randrange(100):02d}", rng.choice(METRICS),
                 f"{rng.uniform(-40, 120):.4f}", rng.randrange(1000), rng.choice(STATUSES), rng.choice(NOTES))
                for i in range(rows))
        if spelling.shuffled:
            made = list(made)  # about 0.5 GB for a million rows, once
            random.Random(SEED).shuffle(made)
        writer.writerows(made)
    os.replace(tmp, path)
    return path


def bench_home(name: str, pattern: str, fresh: bool = True, spelling: Spelling = ISO, catch_up_hours: int = 24,
               group_by: tuple[str, ...] = ("site", "device")) -> Path:
    home = WORK / name
    if fresh and home.exists():
        shutil.rmtree(home)
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.toml").write_text(textwrap.dedent(f"""\
        timezone = "{ZONE}"

        [ingest]
        settle_seconds = 0
        max_bad_rows = 0

        [[sources]]
        name = "bench"
        pattern = "{pattern}"
        timestamp = {'["date", "time"]' if spelling.joined else '"timestamp"'}
        {f'timestamp_format = "{spelling.timestamp_format}"' if spelling.timestamp_format else ""}
        columns = {spelling.columns!r}
        types = {{ value = "real", qty = "integer" }}

        [[reports]]
        name = "by_device"
        source = "bench"
        group_by = {list(group_by)!r}
        [reports.measures]
        readings = "count"
        value_sum = "sum:value"
        value_avg = "avg:value"
        value_min = "min:value"
        value_max = "max:value"
        qty_sum = "sum:qty"

        [hourly]
        catch_up_hours = {catch_up_hours}
        """).replace("'", '"'), encoding="utf-8")
    return home


def loaded_rows(home: Path, table: str = "bench") -> int:
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# ---------------------------------------------------------------- loaders

def shell_import(path: Path, spelling: Spelling = ISO) -> Child:
    db = WORK / "shell.sqlite3"
    db.unlink(missing_ok=True)
    script = f"{typed_table(spelling)};\n.import --csv --skip 1 '{path}' bench\n"
    child = run_child(["sqlite3", str(db)], stdin=script)
    if child.stderr.strip():
        raise SystemExit(f"sqlite3 .import complained: {child.stderr[:500]}")
    return child


BARE_LOADER = """
import csv, sqlite3, sys
conn = sqlite3.connect(sys.argv[2], isolation_level=None)
conn.execute(sys.argv[3])
with open(sys.argv[1], encoding="utf-8", newline="") as handle:
    reader = csv.reader(handle)
    next(reader)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO bench VALUES (?, ?, ?, ?, ?, ?, ?, ?)", reader)
    conn.execute("COMMIT")
"""


# csvreport ingest with the row loop replaced by one that checks nothing: every field stored as
# text, the event time 0. Not a product: what everything but the checks costs (start-up, hash,
# csv module, INSERTs with the time index, WAL commit, bookkeeping), the floor under the target.
NO_CHECKS = """
import itertools, sys
from csvreport import rowloop

def unchecked(checks, reference=False):
    width = checks.width
    def loop(reader, check, batch_len, stop, base, *_):  # the whole file: the floor is measured in one process
        while True:
            batch = []
            for f in itertools.islice(reader, batch_len // width):
                batch += (0, *f)
            if not batch:
                return
            yield batch
    return loop

rowloop.compile_loop = unchecked
from csvreport.cli import main
sys.argv[0] = "csvreport"
main()
"""


def unchecked_ingest(path: Path, rows: int, env: dict) -> Child:
    home = bench_home("ingest-unchecked", str(path))
    child = run_child([sys.executable, "-c", NO_CHECKS, "--quiet", "ingest"], env={**child_env(home), **env})
    if loaded_rows(home) != rows:
        raise SystemExit(f"the unchecked ingest loaded {loaded_rows(home)} rows of {rows}: {child.stdout[-2000:]}")
    return child


def bare_loader(path: Path) -> Child:
    db = WORK / "bare.sqlite3"
    db.unlink(missing_ok=True)
    return run_child([sys.executable, "-c", BARE_LOADER, str(path), str(db), TYPED_TABLE])


def csvreport_ingest(path: Path, rows: int, home_name: str = "ingest", sample_memory: bool = False,
                     env: Optional[dict] = None, spelling: Spelling = ISO) -> Child:
    home = bench_home(home_name, str(path), spelling=spelling)
    child = csvreport(home, "ingest", sample_memory=sample_memory, env=env)
    got = loaded_rows(home)
    if got != rows:
        raise SystemExit(f"csvreport ingest loaded {got} rows of {rows}: {child.stdout[-2000:]}")
    return child


# ---------------------------------------------------------------- targets

def target_ingest(args) -> None:
    rows = args.rows
    kinds = ("shell", "bare", "unchecked", "csvreport", "one process")
    times = {s.name: {k: [] for k in kinds} for s in args.spellings}
    cpu = {s.name: {k: [] for k in kinds} for s in args.spellings}
    # In rounds: each round measures every spelling once, so that a slow spell of the machine (this one
    # has them, a minute or two long) costs every spelling one run of its median, not one spelling all.
    for round_number in range(args.rounds):
        for number, spelling in enumerate(args.spellings):
            path = bench_csv(rows, spelling)
            if (round_number or number) and args.pause:
                time.sleep(args.pause)
            print(f"ingest, round {round_number + 1} of {args.rounds}: {rows:,} rows, "
                  f"{path.stat().st_size / 1e6:.0f} MB ({path.name}), times {spelling.shown}", flush=True)
            # Not measured: the first run after the rest is slower, about 30 ms whatever the program (the
            # shell 1.45 against 1.42 s, csvreport in one process 2.88 against 2.85 s, 6 runs each). The
            # shell, measured first, paid that alone and made every ratio 2 % better than it is.
            shell_import(path, spelling)
            shown = []
            for kind, child in measure_spelling(spelling, path, rows):
                times[spelling.name][kind].append(child.seconds)
                cpu[spelling.name][kind].append(child.cpu)
                shell = times[spelling.name]["shell"][-1]
                ratio = "" if kind == "shell" else f" {child.seconds / shell:.3f} x"
                shown.append(f"{kind} {child.seconds:.3f} s{ratio}")
            print(f"    {'; '.join(shown)}", flush=True)  # each round's own figures: the medians below are of these
    for spelling in args.spellings:
        record_ingest(spelling, rows, times[spelling.name], cpu[spelling.name])


def measure_spelling(spelling: Spelling, path: Path, rows: int) -> Iterator[tuple[str, Child]]:
    """One run of each: the shell, csvreport, csvreport in one process (and for ISO the floors), side by side,
    so that load from others hits them all alike."""
    alone = {"CSVREPORT_HELPER_MIN_BYTES": str(10**15)}  # no helper process: csvreport on one core, as the shell
    yield "shell", shell_import(path, spelling)
    yield "csvreport", csvreport_ingest(path, rows, spelling=spelling)
    yield "one process", csvreport_ingest(path, rows, home_name="ingest-alone", env=alone, spelling=spelling)
    if spelling is ISO:
        yield "bare", bare_loader(path)
        yield "unchecked", unchecked_ingest(path, rows, alone)


def record_ingest(spelling: Spelling, rows: int, times: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    shell, ours, single = (statistics.median(times[k]) for k in ("shell", "csvreport", "one process"))
    shell_cpu, ours_cpu, single_cpu = (statistics.median(cpu[k]) for k in ("shell", "csvreport", "one process"))
    tag = f" [{spelling.shown}]"
    record(Figure("1 ingest", f"sqlite3 shell .import, {rows:,} rows{tag}", shell, "s",
                  note=f"{rows / shell:,.0f} rows/s; CPU {shell_cpu:.2f} s"))
    if times["bare"]:
        record(Figure("1 ingest", "bare csv + executemany (no checks)", statistics.median(times["bare"]), "s",
                      shell, "shell .import"))
        record(Figure("1 ingest", "csvreport ingest in one process with a row loop that checks nothing (the "
                      "floor: everything but the checks)", statistics.median(times["unchecked"]), "s", shell,
                      "shell .import", note=f"CPU {statistics.median(cpu['unchecked']):.2f} s = "
                      f"{statistics.median(cpu['unchecked']) / shell_cpu:.2f} x"))
    # CPU seconds (user + system, the helper included) against the shell's: what a quiet machine's wall
    # times would show for one process, and much less disturbed by other work than wall times.
    # The limits are for the spellings of a time; rows out of time order are a figure to watch.
    record(Figure("1 ingest", f"csvreport ingest in one process (no helper){tag}", single, "s", shell,
                  "shell .import", limit=None if spelling.shuffled else 2.0,
                  note=f"CPU {single_cpu:.2f} s = {single_cpu / shell_cpu:.2f} x"))
    record(Figure("1 ingest", f"csvreport ingest (hash, checks, time zone, bookkeeping){tag}", ours, "s", shell,
                  "shell .import", limit=None if spelling.shuffled else 1.5,
                  note=f"{rows / ours:,.0f} rows/s; CPU of both processes {ours_cpu:.2f} s"))


def target_memory(args) -> None:
    for rows in args.memory_rows:
        path = bench_csv(rows)
        print(f"memory: ingest of {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB)", flush=True)
        child = csvreport_ingest(path, rows, home_name="memory", sample_memory=True)
        shutil.rmtree(WORK / "memory")  # half a gigabyte after 5 M rows
        # ingest and its helper process together; RSS would count the pages they share twice
        record(Figure("2 memory", f"peak memory (PSS) of ingest and its helper, {rows:,} rows", child.peak_pss_mb,
                      "MB", limit=64, note=f"{child.seconds:.1f} s"))
        record(Figure("2 memory", f"peak RSS of the largest process, {rows:,} rows", child.max_rss_mb, "MB"))


def target_skip(args) -> None:
    files = args.files
    inbox = WORK / f"many_{files}"
    if not inbox.exists():
        tmp = WORK / f"many_{files}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        rng = random.Random(SEED)
        then = time.time() - 3600
        for i in range(files):
            stamp = START + timedelta(minutes=i)
            p = tmp / f"export_{i:05d}.csv"
            p.write_text(",".join(COLUMNS) + "\n" + "\n".join(
                f"{(stamp + timedelta(seconds=s)).strftime('%Y-%m-%d %H:%M:%S')},site-{rng.randrange(40):02d},"
                f"dev-{rng.randrange(2000):04d},{rng.choice(METRICS)},{rng.uniform(-40, 120):.3f},"
                f"{rng.randrange(1000)},ok," for s in range(0, 60, 20)) + "\n", encoding="utf-8")
            os.utime(p, (then, then))
        tmp.rename(inbox)
    home = bench_home("skip", f"{inbox}/*.csv")
    print(f"skip: {files:,} files", flush=True)
    first = csvreport(home, "ingest")
    record(Figure("3 nothing new", f"first ingest of {files:,} small files", first.seconds, "s"))
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        loaded = conn.execute("SELECT count(*) FROM ingestion_log WHERE status = 'loaded'").fetchone()[0]
    if loaded != files:
        raise SystemExit(f"only {loaded} of {files} files loaded")
    again = []
    for _ in range(args.repeat):
        again.append(_count_reads(home))
    seconds = statistics.median(a[0] for a in again)
    reads = max(a[1] for a in again)
    record(Figure("3 nothing new", f"ingest with nothing new over {files:,} loaded files", seconds, "s", limit=1.0,
                  note=f"CSV files opened: {reads}"))
    record(Figure("3 nothing new", "CSV files opened by that run", reads, "files", passed=reads == 0))
    rehash = csvreport(home, "ingest", "--rehash")
    record(Figure("3 nothing new", f"ingest --rehash (hashes all {files:,})", rehash.seconds, "s"))


def _count_reads(home: Path) -> tuple[float, int]:
    """Time a run and count the CSV files it opened (strace when present, else an audit hook)."""
    code = ("import sys\nopened = []\n"
            "sys.addaudithook(lambda e, a: opened.append(a[0]) if e == 'open' and str(a[0]).endswith('.csv') "
            "else None)\n"
            "from csvreport.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
            "print('OPENED', len(opened), file=sys.stderr)\nsys.exit(code)\n")
    env = child_env(home)
    # The audit hook costs a little per open; time a plain run, count in a second one.
    seconds = csvreport(home, "ingest").seconds
    child = run_child([sys.executable, "-c", code, "--quiet", "ingest"], env=env)
    reads = int(child.stderr.rsplit("OPENED", 1)[1].split()[0])
    return seconds, reads


def target_imports(args) -> None:
    home = bench_home("imports", str(bench_csv(1000)))
    csvreport(home, "ingest")
    code = ("import sys\nfrom csvreport.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & {'openpyxl', 'pydantic'}), "
            "file=sys.stderr)\n")
    env = child_env(home)
    commands = run_child([sys.executable, "-m", "csvreport", "--help"], env=env).stdout
    for command in ("ingest", "status"):
        if f" {command} " not in commands:
            print(f"  {command}: not a csvreport command yet; skipped")
            continue
        child = run_child([sys.executable, "-c", code, "--quiet", command], env=env)
        # openpyxl only writes workbooks; Pydantic is what Typer would import to coerce the options
        imported = "HEAVY []" not in child.stderr
        start = median_time(args.repeat, lambda command=command: csvreport(home, command).seconds)
        record(Figure("5 start-up", f"`{command}` with nothing to do; openpyxl or Pydantic imported: {imported}",
                      start, "s", passed=not imported))
    bare = median_time(args.repeat, lambda: run_child([sys.executable, "-c", "pass"]).seconds)
    record(Figure("5 start-up", "python3 -c pass (the interpreter alone)", bare, "s"))



CHOICE_RUN = """
import sys, time, sqlite3
from pathlib import Path
from csvreport import db, insert, load, rowloop
from csvreport.config import load_settings
from csvreport.timeconv import TimestampParser

home, data, loop, batch = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
source = load_settings(home, None).sources[0]
insert.BATCH_ROWS = batch
if loop == "reference":  # every row through the reference check, as before the compiled loop existed
    compiled = rowloop.compile_loop
    rowloop.compile_loop = lambda checks: compiled(checks, reference=True)
if loop == "parse":  # the csv module alone: read and split every record, nothing else
    import csv
    started = time.perf_counter()
    with open(data, encoding="utf-8-sig", newline="") as handle:
        count = sum(1 for _ in csv.reader(handle)) - 1
    print(time.perf_counter() - started, count)
    sys.exit()
if loop == "no-insert":  # parse and check every row, insert nothing
    load.insert_batches = lambda conn, rows, batches, **kw: [None for _ in batches]
database = home / "choice.sqlite3"
for suffix in ("", "-wal", "-shm"):
    Path(str(database) + suffix).unlink(missing_ok=True)
conn = sqlite3.connect(database, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
db.ensure_source_table(conn, source)
from csvreport import helper
with helper.Scratch(conn, database) as scratch:  # "helper": a large file is shared, as ingest does
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    result = load.load_rows(conn, source, data, 1, TimestampParser(source.timezone), 0, 0,
                            scratch=scratch if loop == "helper" else None)
    loaded = time.perf_counter()
    conn.execute("COMMIT")
print(loaded - started, result.rows_loaded, time.perf_counter() - loaded)
"""

TIMESTAMPS = """
import sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from csvreport.timeconv import TimestampParser

texts = [line.split(",", 1)[0] for line in open(sys.argv[1], encoding="utf-8")][1:]
texts = [t for t in texts if len(t) == 19][:int(sys.argv[2])]
zone = ZoneInfo("Europe/Berlin")
started = time.perf_counter()
reference = [int(datetime.fromisoformat(t).replace(tzinfo=zone).timestamp()) for t in texts]
middle = time.perf_counter()
parser = TimestampParser("Europe/Berlin")
fast = [parser(t) for t in texts]
done = time.perf_counter()
assert fast == reference
print(middle - started, done - middle, len(texts))
"""


def target_choices(args) -> None:
    """What each design choice of the load path buys, measured on the same file in one process each."""
    rows = args.rows
    path = bench_csv(rows)
    home = bench_home("choices", str(path))
    print(f"choices: load_rows of {rows:,} rows (no start-up, no hash), median of {args.repeat}", flush=True)
    env = child_env(home)
    figures, commits = {}, []
    variants = (("reference", 1), ("reference", 64), ("compiled", 1), ("compiled", 16), ("compiled", 64),
                ("compiled", 256), ("helper", 64))
    if CODE != REPO:  # an older load.py has neither knob; only the timestamp figure means something
        variants = ()
    for loop, batch in variants:
        runs = []
        for _ in range(args.repeat):
            out = run_child([sys.executable, "-c", CHOICE_RUN, str(home), str(path), loop, str(batch)], env=env)
            seconds, loaded, *commit = out.stdout.split()
            if int(loaded) != rows:
                raise SystemExit(f"the {loop} loop loaded {loaded} rows of {rows}")
            runs.append(float(seconds))
            if loop != "helper":
                commits.extend(float(c) for c in commit)
        figures[loop, batch] = statistics.median(runs)
    parts = {}
    for part in ("parse", "no-insert") if variants else ():
        parts[part] = statistics.median(
            float(run_child([sys.executable, "-c", CHOICE_RUN, str(home), str(path), part, "64"], env=env)
                  .stdout.split()[0]) for _ in range(args.repeat))
    before = figures.get(("reference", 1))
    for (loop, batch), seconds in figures.items():
        kind = {"compiled": "compiled row loop", "reference": "reference row check",
                "helper": "compiled row loop and a helper process for the second half"}[loop]
        what = f"{kind}, {batch} row{'s' if batch > 1 else ''} per INSERT"
        record(Figure("choices", what, seconds, "s", before if (loop, batch) != ("reference", 1) else None,
                      "reference, 1 row per INSERT"))
    if parts:
        now = figures["compiled", 64]
        record(Figure("choices", "where load_rows' time goes: csv module alone (read, decode, split)", parts["parse"],
                      "s", now, "whole load_rows"))
        record(Figure("choices", "... + checks, types, time zone (compiled loop), no INSERT", parts["no-insert"], "s",
                      now, "whole load_rows"))
        record(Figure("choices", "... + SQLite INSERTs (the rest of load_rows)", now - parts["no-insert"], "s", now,
                      "whole load_rows"))
        record(Figure("choices", "COMMIT of the load (WAL checkpoint included)", statistics.median(commits), "s"))
    out = run_child([sys.executable, "-c", TIMESTAMPS, str(path), str(rows)], env=env)
    reference, fast, count = out.stdout.split()
    record(Figure("choices", f"{int(count):,} timestamps: TimestampParser (hour table)", float(fast), "s",
                  float(reference), "datetime + zoneinfo per row"))



ROWS_PER_DAY = 100_000  # about 1.16 rows a second, 4,167 an hour
ROWS_PER_FILE = 347  # one export every five minutes
DB_START = 1767222000  # 2026-01-01 00:00 Europe/Berlin
HOUR = "2026-01-01 01:00"  # complete in both databases, with the same 4,167 rows


def full_day(rows: int) -> str:
    """A full day in the middle of the data (the first day when there is less than two)."""
    from datetime import date
    return (date(2026, 1, 1) + timedelta(days=rows // ROWS_PER_DAY // 2)).isoformat()


def bench_db(rows: int) -> Path:
    """A home whose database holds `rows` rows (100,000 a day from 2026-01-01) and their ingestion_log.

    Built with SQL rather than by ingesting CSVs (10 M rows would take minutes); the tables
    are those `csvreport ingest` creates. 2,400 (site, device) pairs, so a report grouped
    by them has 2,400 rows.
    """
    home = WORK / f"db_{rows}"
    if (home / "complete").exists():
        return home
    print(f"  building a database of {rows:,} rows (once; kept in {home.relative_to(REPO)})", flush=True)
    bench_home(home.name, str(WORK / "no_files" / "*.csv"))
    fill_db(home, rows, DB_START)
    (home / "complete").touch()
    return home


def fill_db(home: Path, rows: int, start: int) -> None:
    """Load `rows` rows (100,000 a day from epoch `start`) and their ingestion_log into the home's database."""
    database = home / "data" / "csvreport.sqlite3"
    csvreport(home, "ingest")  # migrations and the source table, as in production
    files = -(-rows // ROWS_PER_FILE)
    with sqlite3.connect(database, isolation_level=None) as conn:
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE f(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM f WHERE n < ?) "
            "INSERT INTO ingestion_log (id, source, path, sha256, size, mtime_ns, status, rows_read, rows_loaded, "
            " first_row_id, last_row_id, min_ts, max_ts, started_at, finished_at) "
            "SELECT n + 1, 'bench', printf('/srv/inbox/bench/export_%06d.csv', n), printf('%064x', n), 28000, 0, "
            " 'loaded', min(?, ?3 * (n + 1)) - ?3 * n, min(?1, ?3 * (n + 1)) - ?3 * n, ?3 * n + 1, "
            " min(?1, ?3 * (n + 1)), 0, 0, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z' FROM f",
            (files - 1, rows, ROWS_PER_FILE))
        conn.execute(
            "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < ?) "
            "INSERT INTO bench (_ingestion_id, _ts, timestamp, site, device, metric, value, qty, status, note) "
            "SELECT i / ? + 1, ? + i * 864 / 1000, strftime('%Y-%m-%d %H:%M:%S', ? + i * 864 / 1000, 'unixepoch'), "
            " printf('site-%02d', i % 40), printf('dev-%04d', i / 40 % 60), "
            " CASE i % 6 WHEN 0 THEN 'temperature' WHEN 1 THEN 'humidity' WHEN 2 THEN 'pressure' WHEN 3 THEN 'co2' "
            " WHEN 4 THEN 'voltage' ELSE 'current' END, (i * 7919 % 160000) / 1000.0 - 40, i % 1000, "
            " CASE WHEN i % 50 = 0 THEN 'warn' ELSE 'ok' END, CASE WHEN i % 7 = 0 THEN 'geprüft' END FROM r",
            (rows - 1, ROWS_PER_FILE, start, start))
        conn.execute("UPDATE ingestion_log SET min_ts = (SELECT min(_ts) FROM bench WHERE _id BETWEEN first_row_id "
                     "AND last_row_id), max_ts = (SELECT max(_ts) FROM bench WHERE _id BETWEEN first_row_id "
                     "AND last_row_id)")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


SAVE_TIMER = """
import sys, time
from csvreport import workbook
original = workbook.save
def timed(final, content):
    started = time.perf_counter()
    saved = original(final, content)
    print("SAVE", time.perf_counter() - started, final.name, file=sys.stderr)
    return saved
workbook.save = timed
from csvreport.cli import main
main()
"""


def _timed_command(home: Path, repeat: int, *args: str) -> tuple[float, list[float]]:
    """Median wall time of a csvreport command, and the seconds each workbook save took in it."""
    env = child_env(home)
    times, saves = [], []
    for _ in range(repeat):
        child = run_child([sys.executable, "-c", SAVE_TIMER, "--quiet", *args], env=env)
        times.append(child.seconds)
        saves += [float(line.split()[1]) for line in child.stderr.splitlines() if line.startswith("SAVE ")]
    return statistics.median(times), saves


def target_reports(args) -> None:
    small, big = bench_db(args.db_small), bench_db(args.db_rows)
    print(f"reports: {args.db_rows:,} vs {args.db_small:,} rows, median of {args.repeat}", flush=True)
    for label, command in (("hourly --hour", ["hourly", "--hour", HOUR]), ("status", ["status"]),
                           ("status --json", ["status", "--json"])):
        t_small, _ = _timed_command(small, args.repeat, *command)
        t_big, saves = _timed_command(big, args.repeat, *command)
        record(Figure("4 reports", f"`{label}` on {args.db_rows:,} rows", t_big, "s", t_small,
                      f"{args.db_small:,} rows", limit=1.5))
        if saves:
            with sqlite3.connect(big / "data" / "csvreport.sqlite3") as conn:
                groups = conn.execute("SELECT count(*) FROM (SELECT DISTINCT site, device FROM bench "
                                      "WHERE _ts >= ? AND _ts < ?)", (DB_START + 3600, DB_START + 7200)).fetchone()[0]
            record(Figure("4 reports", f"workbook of {groups:,} rows written (save only)", statistics.median(saves),
                          "s", limit=1.0))
    day = full_day(args.db_rows)
    t_day, saves = _timed_command(big, args.repeat, "daily", "--date", day, "--until", "24:00")
    record(Figure("4 reports", f"`daily --date {day}` (a full day, {ROWS_PER_DAY:,} rows) on {args.db_rows:,} rows",
                  t_day, "s", limit=3.0, note=f"workbook save {statistics.median(saves):.2f} s" if saves else ""))


WEEK_HOURS = 168


def target_week(args) -> None:
    """A plain `hourly` after a week without runs: every hour of the catch-up range gets its workbook."""
    now = time.time()
    end = int(now // 3600 * 3600)  # the last complete hour ends here
    start = end - (WEEK_HOURS + 1) * 3600  # the range starts inside this hour unless the run starts at :00
    rows = (WEEK_HOURS + 1) * ROWS_PER_DAY // 24
    template = bench_home("week-template", str(WORK / "no_files" / "*.csv"), catch_up_hours=WEEK_HOURS,
                          group_by=tuple(args.week_group_by))
    print(f"week: {rows:,} rows over the last {WEEK_HOURS} hours, a plain `hourly` with catch_up_hours = "
          f"{WEEK_HOURS}, report grouped by {', '.join(args.week_group_by)}; median of {args.repeat}", flush=True)
    fill_db(template, rows, start)
    times, counts = [], []
    for _ in range(args.repeat):
        home = WORK / "week"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(template, home)
        (home / "config" / "settings.toml").write_text(
            (template / "config" / "settings.toml").read_text(encoding="utf-8"), encoding="utf-8")
        times.append(csvreport(home, "hourly").seconds)
        counts.append(sum(1 for _ in (home / "reports").rglob("*.xlsx")))
    if min(counts) < WEEK_HOURS - 1:  # the complete hours of the last 168: 167, or 168 at :00 sharp
        raise SystemExit(f"a plain hourly wrote {min(counts)} workbooks where {WEEK_HOURS - 1} were due")
    with sqlite3.connect(template / "data" / "csvreport.sqlite3") as conn:
        groups = conn.execute(f"SELECT count(*) FROM (SELECT DISTINCT {', '.join(args.week_group_by)} FROM bench "
                              "WHERE _ts >= ? AND _ts < ?)", (start, start + 3600)).fetchone()[0]
    shutil.rmtree(template)
    record(Figure("6 catch-up", f"plain `hourly` after {WEEK_HOURS} hours without runs: {min(counts)} workbooks "
                  f"of {groups} rows ({ROWS_PER_DAY // 24:,} rows an hour)", statistics.median(times), "s",
                  limit=5.0, note=f"{statistics.median(times) / min(counts) * 1000:.0f} ms a workbook"))


TARGETS = {"ingest": target_ingest, "memory": target_memory, "skip": target_skip, "reports": target_reports,
           "imports": target_imports, "choices": target_choices,
           "week": target_week}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(TARGETS), help=f"comma-separated subset of {', '.join(TARGETS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that it all works, in a minute")
    parser.add_argument("--rows", type=int, help="rows of the ingest file (default 1,000,000)")
    parser.add_argument("--repeat", type=int, help="runs per measurement; the median is shown (default 3)")
    parser.add_argument("--rounds", type=int, help="rounds of the ingest target, each measuring every spelling once; "
                        "the median is shown (default 5; --repeat when given)")
    parser.add_argument("--spellings", help=f"comma-separated timestamp spellings for the ingest target, among "
                        f"{', '.join(SPELLINGS)} (default: all)")
    parser.add_argument("--pause", type=float, help="seconds of rest before each spelling of the ingest target "
                        "but the first (default 10; 0 with --quick): the writeback and the heat of one "
                        "spelling's runs stay out of the next one's")
    parser.add_argument("--week-group-by", default="site", help="the hourly report's group_by in the week "
                        "target, comma-separated (default: site, 40 rows a workbook)")
    parser.add_argument("--code", type=Path, help="import csvreport from this folder (e.g. an older version "
                        "unpacked with `git archive`) to measure it the same way")
    args = parser.parse_args()
    if args.code:
        global CODE
        CODE = args.code.resolve()
    quick = args.quick
    names = [n.strip() for n in (args.spellings or ",".join(SPELLINGS)).split(",") if n.strip()]
    if set(names) - set(SPELLINGS):
        parser.error(f"unknown spelling(s) {', '.join(sorted(set(names) - set(SPELLINGS)))}; "
                     f"choose among {', '.join(SPELLINGS)}")
    args.spellings = [SPELLINGS[n] for n in names]
    args.week_group_by = [c.strip() for c in args.week_group_by.split(",") if c.strip()]
    args.rows = args.rows or (50_000 if quick else 1_000_000)
    args.rounds = args.rounds or args.repeat or (1 if quick else 5)
    args.repeat = args.repeat or (1 if quick else 3)
    args.pause = (0 if quick else 10) if args.pause is None else args.pause
    args.memory_rows = [args.rows] if quick else [1_000_000, 5_000_000]
    args.files = 500 if quick else 10_000
    args.db_rows = 200_000 if quick else 10_000_000
    args.db_small = 10_000
    wanted = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(wanted) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s) {', '.join(sorted(unknown))}; choose among {', '.join(TARGETS)}")
    print(machine(), flush=True)
    if CODE != REPO:
        print(f"csvreport imported from {CODE}", flush=True)
    compile_bytecode()
    started = time.perf_counter()
    for name in wanted:
        TARGETS[name](args)
    print_table()
    print(f"\n{machine().rsplit('; ', 1)[1]}; whole run {time.perf_counter() - started:.0f} s")
    if any(f.verdict == "FAIL" for f in FIGURES):
        sys.exit(1)


if __name__ == "__main__":
    main()
