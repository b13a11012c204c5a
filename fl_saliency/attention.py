"""Rendering attention maps from their feature grid onto the 84x84 input and the 210x160 screen.

networks.md, "Rendering attention onto the input": each cell is spread over its receptive
field by a transposed convolution with an all-ones kernel, clamped at 0; a whole run shares
one maximum; the raw screen gets the 84x84 map resized bilinearly with half-pixel centres.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fl_saliency.networks import AttentionGeometry

INPUT_SIZE = 84
RAW_HEIGHT, RAW_WIDTH = 210, 160


def render_input(attention: torch.Tensor, geometry: AttentionGeometry) -> torch.Tensor:
    """(B, grid, grid) maps -> (B, 84, 84), each cell spread over its receptive field, clamped at 0."""
    if attention.shape[-2:] != (geometry.grid, geometry.grid):
        raise ValueError(f"attention maps of shape {tuple(attention.shape)} do not lie on a {geometry.grid}x{geometry.grid} grid")
    kernel = attention.new_ones(1, 1, geometry.receptive_field, geometry.receptive_field)
    rendered = F.conv_transpose2d(attention[:, None].float(), kernel.float(), stride=geometry.stride, padding=geometry.padding)
    return rendered[:, 0].clamp_min(0.0)


def resize(maps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W) -> (B, height, width), bilinear with half-pixel centres (align_corners=False)."""
    return F.interpolate(maps[:, None].float(), size=(height, width), mode="bilinear", align_corners=False)[:, 0]


def resize_to_raw(maps: torch.Tensor) -> torch.Tensor:
    """(B, 84, 84) -> (B, 210, 160), the raw screen's grid."""
    return resize(maps, RAW_HEIGHT, RAW_WIDTH)


def normalise_common_max(maps: torch.Tensor, maximum: float | torch.Tensor | None = None) -> torch.Tensor:
    """Divide all maps by one maximum (theirs unless given); maps whose maximum is 0 stay as they are."""
    peak = maps.max() if maximum is None else torch.as_tensor(maximum, dtype=maps.dtype)
    return maps if peak == 0 else maps / peak
