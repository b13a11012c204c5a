"""The one exception type for problems a user can cause; cli.py prints it as one line."""


class FlSaliencyError(Exception):
    """Bad input or state that the user can fix: unknown names, missing or corrupt files, ..."""
