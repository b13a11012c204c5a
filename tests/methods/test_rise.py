"""RISE (fl_saliency/methods/rise.py): its masks against PIL's bilinear resize of the same draws,
their statistics, and the map against a per-mask loop in numpy."""

import math

import numpy as np
import torch
from PIL import Image

from explain_models import Linear, one_thread  # noqa: F401 (autouse fixture)
from fl_saliency.methods import rise


def test_masks_are_the_papers_upsampled_shifted_grids():
    n, cells, p = 40, 8, 0.5
    masks = rise.rise_masks(n, cells, p, 84, seed=3).numpy()
    # The same draws, in the same order, upsampled by PIL (half-pixel centres) and cropped by hand.
    g = torch.Generator().manual_seed(3)
    grid = (torch.rand(n, 1, cells, cells, generator=g) < p).float().numpy()[:, 0]
    shifts = torch.randint(0, 11, (n, 2), generator=g).numpy()
    for i in range(n):
        up = np.asarray(Image.fromarray(grid[i], mode="F").resize((99, 99), Image.BILINEAR))
        dy, dx = shifts[i]
        np.testing.assert_allclose(masks[i], up[dy : dy + 84, dx : dx + 84], atol=1e-6)


def test_mask_statistics():
    masks = rise.rise_masks(1000, 8, 0.5, 84, seed=0)
    assert masks.shape == (1000, 84, 84) and masks.min() >= 0 and masks.max() <= 1
    # Each pixel's value is a bilinear mix of Bernoulli(0.5) cells: mean 0.5 over masks, every pixel.
    per_pixel = masks.mean(0)
    assert abs(float(per_pixel.mean()) - 0.5) < 0.01 and float((per_pixel - 0.5).abs().max()) < 0.08
    # A cell is 11 px: the mask is constant within a cell's centre, so about 1/11^2 of the
    # area around each cell centre is exactly 0 or 1; no mask is all 0 or all 1.
    assert 0.01 < float(((masks == 0) | (masks == 1)).float().mean()) < 0.2
    assert bool((masks.flatten(1).std(1) > 0).all())
    assert math.ceil(84 / 8) == 11


def test_constant_policy_gives_the_mean_mask_over_p():
    model = Linear(n_actions=4)
    model.w.zero_()  # softmax of zero logits: P(action) = 1/4 for every masked input
    obs = torch.randint(0, 256, (1, 4, 84, 84), dtype=torch.uint8)
    maps = rise.rise_saliency(model, obs, torch.tensor([1]), n_masks=100, chunk=30)
    masks = rise.rise_masks(100, 8, 0.5, 84)
    torch.testing.assert_close(maps[0], 0.25 * masks.sum(0) / (100 * 0.5))


def test_map_matches_a_per_mask_loop():
    model = Linear(n_actions=3)
    obs = torch.randint(0, 256, (2, 4, 84, 84), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    actions = torch.tensor([2, 0])
    maps = rise.rise_saliency(model, obs, actions, n_masks=64, chunk=25).numpy()
    masks = rise.rise_masks(64, 8, 0.5, 84).double().numpy()
    w = model.w.double().numpy()
    for n in range(2):
        x = obs[n].double().numpy() / 255
        expected = np.zeros((84, 84))
        for mask in masks:
            logits = w @ (x * mask).ravel()
            prob = np.exp(logits - logits.max())
            expected += prob[actions[n]] / prob.sum() * mask
        np.testing.assert_allclose(maps[n], expected / (64 * 0.5), rtol=1e-4)
