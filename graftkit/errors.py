"""Error types whose messages are meant for the person running graftkit.

The CLI prints these without a traceback; anything else is a bug.
"""
from __future__ import annotations


class GraftkitError(Exception):
    """Base class for errors a user can fix (bad config, bad data, bad run folder)."""


class ConfigError(GraftkitError):
    """A configuration value is missing, unknown or invalid."""


class DataError(GraftkitError):
    """A data file is unreadable or holds an invalid row.

    The message always names the file and, where it applies, the line and field.
    """

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f", line {line}" if line is not None else "")
        where += f", field '{field}'" if field else ""
        super().__init__(f"{where}: {message}")


class RunFolderError(GraftkitError):
    """A run folder is missing files or was written by an incompatible version."""


class UnsupportedError(GraftkitError):
    """A run's task lacks what a command needs; the message names the task and what it supports."""


class ExportError(GraftkitError):
    """The model could not be exported, or the exported graph disagrees with torch."""
