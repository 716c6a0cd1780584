"""User errors: a bad value, file or order of stages. The CLI prints their one-line message and
exits with status 2, without a traceback; anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """Something the user can fix; the message names the key or file and what is expected."""


class ConfigError(UserError, ValueError):
    """params.yaml (or a command-line value) is not valid."""


class DataError(UserError, ValueError):
    """A data file is missing, malformed or fails its checks."""
