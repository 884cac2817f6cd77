"""The project's own error types: mistakes a person can fix, reported in one line by the CLI.

Anything else that escapes a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class QcnnError(Exception):
    """Base of every error the CLI reports as one line."""


class DataError(QcnnError):
    """A problem with the data set that a person can fix (path, missing or broken file)."""


class MissingFileError(QcnnError, FileNotFoundError):
    """A file a command needs is absent; the message names the command that writes it."""


class ConfigError(QcnnError, ValueError):
    """A flag, experiment file or configuration value that cannot be used."""


class RunMismatchError(QcnnError):
    """A finished run exists but was made with other settings than those asked for."""
