"""``rise``: Petsiuk et al. 2018, "RISE: Randomized Input Sampling for Explanation of Black-box Models".

N random masks: an s x s grid of cells, each 1 with probability p, upsampled bilinearly
(half-pixel centres) to (s + 1) * ceil(84 / s) pixels and cropped to 84x84 at a random shift in
[0, ceil(84 / s)) on each axis (the paper's section 3.2 and its reference code,
github:eclique/RISE). The map is sum_i P(action | I * M_i) * M_i / (N p), I * M_i masking all
four frames alike. One set of masks (seed 0) serves every map of a run.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from fl_saliency.agents.networks import scale_observation

CELLS = 8
KEEP_PROBABILITY = 0.5
NUM_MASKS = 1000
SEED = 0
MASKED_INPUTS_PER_PASS = 250  # the observation under this many masks a forward pass


@lru_cache(maxsize=4)
def rise_masks(n: int = NUM_MASKS, cells: int = CELLS, p: float = KEEP_PROBABILITY, size: int = 84,
               seed: int = SEED) -> torch.Tensor:
    """(n, size, size) float32 masks with values in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    cell = math.ceil(size / cells)
    grid = (torch.rand(n, 1, cells, cells, generator=generator) < p).float()
    upsampled = F.interpolate(grid, size=((cells + 1) * cell,) * 2, mode="bilinear", align_corners=False)[:, 0]
    shifts = torch.randint(0, cell, (n, 2), generator=generator).tolist()
    return torch.stack([upsampled[i, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(shifts)])


@torch.no_grad()
def rise_saliency(model, obs: torch.Tensor, actions: torch.Tensor, n_masks: int = NUM_MASKS, cells: int = CELLS,
         p: float = KEEP_PROBABILITY, chunk: int = MASKED_INPUTS_PER_PASS) -> torch.Tensor:
    """(N, 84, 84): the masks weighted by the policy's probability of ``actions`` on the masked input."""
    x = scale_observation(obs)
    m = rise_masks(n_masks, cells, p, x.shape[-1]).to(x.device)
    maps = torch.zeros(len(x), *x.shape[-2:], device=x.device)
    for i in range(len(x)):
        for start in range(0, n_masks, chunk):
            batch = m[start : start + chunk]
            masked = (x[i] * batch[:, None]).contiguous(memory_format=torch.channels_last)
            probs = torch.softmax(model.forward_scaled(masked)[0], dim=1)[:, actions[i]]
            maps[i] += torch.tensordot(probs, batch, dims=1)
    return maps / (n_masks * p)
