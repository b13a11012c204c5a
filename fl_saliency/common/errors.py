"""The one exception type for problems a user can cause; cli.py prints it as one line. And warnings, one line each."""

import importlib.util
import sys


class FlSaliencyError(Exception):
    """Bad input or state that the user can fix: unknown names, missing or corrupt files, ..."""


def warn(message: str) -> None:
    """One line on stderr about an option that has no effect or is cut short; the command goes on."""
    print(f"warning: {message}", file=sys.stderr)


def require_extra(extra: str, what: str, *modules: str) -> None:
    """Raise the one line that names the extra to install when a module ``what`` needs is missing."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise FlSaliencyError(f"{what} needs {', '.join(missing)}, which the core install leaves out: "
                              f"pip install 'fl-saliency[{extra}]'")
