"""The report of a sweep: report.md and report.html (markdown.py), the paper's tables (tables.py), the figures
(plots.py), the rliable aggregates (aggregate.py); and the model card of one agent (model_card.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fl_saliency.common import rundir
from fl_saliency.common.errors import FlSaliencyError, require_extra


def require_report_extra(what: str = "fl-saliency report") -> None:
    """The one line naming the extra to install when the report's plots, aggregates or storage are missing."""
    require_extra("report", what, "matplotlib", "rliable", "pyarrow")


def report_location(location: str, out: Path | None = None, echo=print) -> str:
    """``write_report`` for a sweep folder or a storage URI; returns where report.md went.

    A storage's runs are copied to a temporary folder (checkpoints, weights and videos left behind) and the report
    is uploaded into the storage, unless ``out`` names a local folder for it.
    """
    from fl_saliency.common.io import is_uri
    from fl_saliency.sweep.storage import Storage

    from fl_saliency.report.markdown import write_report

    require_report_extra()
    if not is_uri(location):
        return str(write_report(Path(location), out, echo))
    storage = Storage(location)
    with tempfile.TemporaryDirectory(prefix="fl-saliency-report.") as tmp:
        local = Path(tmp) / "sweep"
        if not storage.download("", local, skip=(rundir.CHECKPOINT_FILE, rundir.MODEL_FILE, "*.mkv", "*.mp4")):
            raise FlSaliencyError(f"sweep storage {location} is empty or does not exist")
        if out is not None:
            return str(write_report(local, out, echo, title=location))
        written = Path(tmp) / "report"
        write_report(local, written, echo, title=location)
        storage.upload(written, "", mirror=False)
    return storage.uri("report.md")
