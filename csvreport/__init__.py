"""csvreport: CSV exports into SQLite exactly once, and into hourly and daily Excel reports."""

__version__ = "0.1.0"
