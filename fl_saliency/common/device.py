"""Where the network runs: the ``--device`` setting every command shares, and its resolution to a torch device."""

from __future__ import annotations

import torch

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.settings import setting


def device_setting():
    return setting("auto", help="auto (CUDA when present), cpu, cuda, cuda:N")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FlSaliencyError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise FlSaliencyError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N") from None
