"""Running a network for inference: precision (fp32 / bf16 autocast), CPU threads, and a check that its weights are finite."""

from __future__ import annotations

import contextlib

import torch

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.settings import setting

PRECISIONS = ("fp32", "bf16")


def precision_setting():
    return setting("fp32", choices=PRECISIONS,
                   help="bf16: mixed precision, ~2x faster on CPUs with AMX and on GPUs (the original is fp32)")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise FlSaliencyError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    return precision


def autocast(device: torch.device, precision: str):
    """``bf16``: mixed precision, convolutions and matrix products in bfloat16 (AMX / tensor cores),
    the rest, losses included, in float32. ``fp32`` (the default, as the original) changes nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=check_precision(precision) == "bf16")


def first_nonfinite_parameter(model: torch.nn.Module) -> str | None:
    """The name of the first parameter holding a NaN or an infinity, or None; one device sync for all."""
    names, tensors = zip(*model.state_dict().items())
    finite = torch.stack([torch.isfinite(t).all() for t in tensors]).cpu()
    return next((name for name, ok in zip(names, finite) if not ok), None)


@contextlib.contextmanager
def inference_threads(device: torch.device):
    """One intra-op thread for small-batch CPU inference: more would only spin against the env workers."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
