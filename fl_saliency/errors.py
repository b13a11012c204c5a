"""The one exception type for problems a user can cause; cli.py prints it as one line. And warnings, one line each."""

import sys


class FlSaliencyError(Exception):
    """Bad input or state that the user can fix: unknown names, missing or corrupt files, ..."""


def warn(message: str) -> None:
    """One line on stderr about an option that has no effect or is cut short; the command goes on."""
    print(f"warning: {message}", file=sys.stderr)
