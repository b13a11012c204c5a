"""The one exception type for problems a user can cause; cli.py prints it as one line."""

import importlib.util


class FlSaliencyError(Exception):
    """Bad input or state that the user can fix: unknown names, missing or corrupt files, ..."""


def require_extra(extra: str, what: str, *modules: str) -> None:
    """Raise the one line that names the extra to install when a module ``what`` needs is missing."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise FlSaliencyError(f"{what} needs {', '.join(missing)}, which the core install leaves out: "
                              f"pip install 'fl-saliency[{extra}]'")
