"""Rendering attention maps from their feature grid onto the 84x84 input and the 210x160 screen.

docs/spec/networks.md, "Rendering attention onto the input": each cell is spread over its receptive
field by a transposed convolution with an all-ones kernel, clamped at 0; a whole run shares
one maximum; the raw screen gets the 84x84 map upscaled as the original's
``skimage.transform.resize`` (scikit-image 0.15) does: bilinear, half-pixel centres, and
samples beyond the edge mirrored about the edge pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fl_saliency.agents.networks import AttentionGeometry

INPUT_SIZE = 84
RAW_HEIGHT, RAW_WIDTH = 210, 160


def render_input(attention: torch.Tensor, geometry: AttentionGeometry) -> torch.Tensor:
    """(B, grid, grid) maps -> (B, 84, 84), each cell spread over its receptive field, clamped at 0."""
    if attention.shape[-2:] != (geometry.grid, geometry.grid):
        raise ValueError(f"attention maps of shape {tuple(attention.shape)} do not lie on a {geometry.grid}x{geometry.grid} grid")
    kernel = attention.new_ones(1, 1, geometry.receptive_field, geometry.receptive_field)
    rendered = F.conv_transpose2d(attention[:, None].float(), kernel.float(), stride=geometry.stride, padding=geometry.padding)
    return rendered[:, 0].clamp_min_(0.0)


ZERO_MAXIMUM = 1e-8  # the original's np.allclose(maximum, 0): atol 1e-8


def _linear_taps(size_in: int, size_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Output i samples input position (i + 0.5) * size_in / size_out - 0.5 between taps ``low`` and ``high``
    with weight ``frac`` on ``high``; positions beyond the edge reflect about the edge pixel (numpy's 'reflect',
    scikit-image's resize mode), where torch's bilinear would clamp to the edge pixel."""
    position = (torch.arange(size_out, dtype=torch.float64) + 0.5) * (size_in / size_out) - 0.5
    low = torch.floor(position)
    frac = position - low
    low = low.long()

    def reflect(index: torch.Tensor) -> torch.Tensor:
        if size_in == 1:
            return torch.zeros_like(index)
        index = index.abs()
        return torch.where(index > size_in - 1, 2 * (size_in - 1) - index, index)

    return reflect(low).to(device), reflect(low + 1).to(device), frac.to(device)


def resize(maps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W) -> (B, height, width) float64, upscaled as scikit-image 0.15's ``resize`` with its defaults.

    That is order 1 (bilinear), half-pixel centres, mode 'reflect' (for 84 -> 210 rows, row 0
    samples row -0.3: 0.7 p0 + 0.3 p1), and no smoothing when upscaling; in float64 as it did.
    Each tap is ``a + frac * (b - a)``, exact where ``a == b``: equal saliency stays tied
    for sAUC, where scikit-image's ``(1 - frac) * a + frac * b`` breaks such ties by rounding.
    """
    if height < maps.shape[-2] or width < maps.shape[-1]:
        raise ValueError(f"resize upscales only; {tuple(maps.shape[-2:])} -> {(height, width)} would need anti-aliasing")
    maps = maps.double()
    low, high, frac = _linear_taps(maps.shape[-1], width, maps.device)
    maps = maps[..., low] + frac * (maps[..., high] - maps[..., low])
    low, high, frac = _linear_taps(maps.shape[-2], height, maps.device)
    return maps[..., low, :] + frac[:, None] * (maps[..., high, :] - maps[..., low, :])


def resize_to_raw(maps: torch.Tensor) -> torch.Tensor:
    """(B, 84, 84) -> (B, 210, 160), the raw screen's grid."""
    return resize(maps, RAW_HEIGHT, RAW_WIDTH)


def normalise_common_max(maps: torch.Tensor, maximum: float | torch.Tensor | None = None) -> torch.Tensor:
    """Divide all maps by one maximum (theirs unless given); maps whose maximum is ~0 (|max| <= 1e-8) stay as they are."""
    peak = maps.max() if maximum is None else torch.as_tensor(maximum, dtype=maps.dtype)
    return maps if abs(float(peak)) <= ZERO_MAXIMUM else maps / peak
