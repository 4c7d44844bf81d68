"""User-facing errors: each carries a one-line message and the process exit code it maps to.

Anything raised as a subclass of ``UserError`` is printed by the CLI as ``error: <message>`` without
a traceback; any other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem the user can fix; the message is shown as-is on one line."""

    exit_code = 2


class ConfigError(UserError):
    """A bad flag, YAML key or value."""

    exit_code = 2


class InputError(UserError):
    """A missing, unreadable, empty or corrupt input."""

    exit_code = 3


class OutputError(UserError):
    """An output that cannot or must not be written (exists, unwritable, same as input)."""

    exit_code = 4


class CheckpointError(UserError):
    """A model source that cannot be resolved or does not match the architecture."""

    exit_code = 5

