"""The exceptions csvreport raises on purpose; each carries the exit code the CLI uses."""


class CsvReportError(Exception):
    """A failure the operator can act on: exit code 1."""

    exit_code = 1


class ConfigError(CsvReportError):
    """The configuration or the command line is wrong: exit code 2."""

    exit_code = 2


class LockHeld(CsvReportError):
    """Another run holds the lock: exit code 3."""

    exit_code = 3
