"""``perturbation`` / ``perturbation-critic``: Greydanus et al. 2018, "Visualizing and Understanding
Atari Agents" (github:greydanus/visualize_atari, saliency.py).

For each point of a grid of stride 5 (17 x 17 = 289 points on 84x84), a mask M is the 5-pixel
cross around the point blurred with a Gaussian of sigma 5 and divided by its maximum; the
input becomes I' = I * (1 - M) + G_3(I) * M (G_3: a Gaussian blur of sigma 3, each frame on
its own), the same mask on all four frames of the stack. The point's score is
1/2 ||logits(I) - logits(I')||^2 (the value's for the critic). As the original's
``imresize(scores, bilinear)``: the score grid is scaled to [0, 1] by its minimum and maximum,
resized bilinearly (half-pixel centres) to 84x84 and scaled so its maximum is the grid's; the
original's 8-bit rounding in between is left out. Blurs follow scipy.ndimage.gaussian_filter
(boundary 'reflect', radius 4 sigma).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.agents.networks import scale_observation

SIZE = 84
STRIDE = 5
MASK_SIGMA = 5.0
BLUR_SIGMA = 3.0
PERTURBED_INPUTS_PER_PASS = 289  # perturbed inputs per forward pass: one observation's masks


def gaussian_filter(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur over the last two axes, as scipy.ndimage.gaussian_filter(mode='reflect', truncate=4)."""
    radius = int(4.0 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(images.dtype).to(images.device)
    shape = images.shape
    x = images.reshape(-1, 1, *shape[-2:])
    for axis in (-1, -2):
        n = x.shape[axis]
        index = torch.from_numpy(np.pad(np.arange(n), radius, mode="symmetric")).to(images.device)
        x = x.index_select(axis % 4, index)
        weights = kernel.view(1, 1, -1, 1) if axis == -2 else kernel.view(1, 1, 1, -1)
        x = F.conv2d(x, weights)
    return x.reshape(shape)


@lru_cache(maxsize=4)
def masks(size: int = SIZE, stride: int = STRIDE, sigma: float = MASK_SIGMA) -> torch.Tensor:
    """(P, size, size) float32: one mask per grid point (row-major), as the original's ``get_mask``."""
    centres = range(0, size, stride)
    cross = np.zeros((len(centres) ** 2, size, size))
    y, x = np.ogrid[:size, :size]
    for k, (i, j) in enumerate((i, j) for i in centres for j in centres):
        cross[k][(y - i) ** 2 + (x - j) ** 2 <= 1] = 1.0
    blurred = gaussian_filter(torch.from_numpy(cross), sigma)
    return (blurred / blurred.amax(dim=(1, 2), keepdim=True)).float()


def upsample_scores(scores: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """(N, g, g) score grids -> (N, size, size) as the original's imresize + rescale to the grid's maximum."""
    low = scores.amin(dim=(1, 2), keepdim=True)
    high = scores.amax(dim=(1, 2), keepdim=True)
    spread = high - low
    unit = torch.where(spread > 0, (scores - low) / spread.where(spread > 0, torch.ones_like(spread)), 0.0)
    resized = F.interpolate(unit[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    peak = resized.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, high * resized / peak.where(peak > 0, torch.ones_like(peak)), 0.0)


@torch.no_grad()
def perturbation_scores(model, obs: torch.Tensor, critic: bool = False, stride: int = STRIDE,
                        chunk: int = PERTURBED_INPUTS_PER_PASS) -> torch.Tensor:
    """(N, g, g): each grid point's 1/2 ||out(I) - out(I')||^2, out the logits or (critic) the value."""
    x = scale_observation(obs)
    # Channels-last (N, 84, 84, 4) views: the perturbed batch is written once, in the layout the network reads.
    image = x.permute(0, 2, 3, 1)
    blur_minus_image = (gaussian_filter(x, BLUR_SIGMA) - x).permute(0, 2, 3, 1)
    m = masks(x.shape[-1], stride).to(x.device)[..., None]
    output = lambda batch: model.forward_scaled(batch)[1][:, None] if critic else model.forward_scaled(batch)[0]
    reference = output(x)
    scores = torch.empty(len(x), len(m), device=x.device)
    for n in range(len(x)):
        for start in range(0, len(m), chunk):
            perturbed = torch.addcmul(image[n], blur_minus_image[n], m[start : start + chunk])
            diff = reference[n] - output(perturbed.permute(0, 3, 1, 2))
            scores[n, start : start + chunk] = 0.5 * diff.square().sum(dim=1)
    grid = int(round(len(m) ** 0.5))
    return scores.view(len(x), grid, grid)


def require_value(model) -> None:
    """One line unless the model has a value head (this project's networks all have one)."""
    if not getattr(model, "has_value", True):
        raise FlSaliencyError(f"perturbation-critic needs a value head, which the {model.source.library} "
                              f"{model.source.algorithm} agent lacks; use perturbation")


def perturbation_actor(model, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 84, 84) actor perturbation saliency; ``actions`` unused (the score covers all logits)."""
    return upsample_scores(perturbation_scores(model, obs), obs.shape[-1])


def perturbation_critic(model, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 84, 84) critic perturbation saliency: the same on the value."""
    require_value(model)
    return upsample_scores(perturbation_scores(model, obs, critic=True), obs.shape[-1])
