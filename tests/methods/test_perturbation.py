"""Greydanus perturbation saliency (fl_saliency/methods/perturbation.py) against a per-mask loop
in numpy/scipy written after the original's saliency.py, and the original's upsampling done with PIL."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from explain_models import Linear, one_thread  # noqa: F401 (autouse fixture)
from fl_saliency.methods import perturbation
from fl_saliency.agents.networks import ActorCritic


def get_mask(center, size, r):  # the original's, verbatim
    y, x = np.ogrid[-center[0]:size[0] - center[0], -center[1]:size[1] - center[1]]
    keep = x * x + y * y <= 1
    mask = np.zeros(size)
    mask[keep] = 1
    mask = gaussian_filter(mask, sigma=r)
    return mask / mask.max()


def reference_map(output, image: np.ndarray, stride=5, size=84) -> np.ndarray:
    """One observation (4, 84, 84) in [0, 1]: the original's score_frame loop, every frame occluded alike,
    and its imresize(bilinear) without the 8-bit rounding (PIL's float resize)."""
    blurred = np.stack([gaussian_filter(frame, sigma=3) for frame in image])
    reference = output(image)
    g = len(range(0, size, stride))
    scores = np.zeros((g, g))
    for i in range(0, size, stride):
        for j in range(0, size, stride):
            mask = get_mask([i, j], [size, size], 5)
            perturbed = image * (1 - mask) + blurred * mask
            scores[i // stride, j // stride] = 0.5 * np.sum((reference - output(perturbed)) ** 2)
    unit = (scores - scores.min()) / (scores.max() - scores.min())  # scipy.misc.bytescale, unrounded
    resized = np.asarray(Image.fromarray(unit.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
    return scores.max() * resized / resized.max()


def test_masks_and_blur_match_scipy():
    masks = perturbation.masks()
    assert masks.shape == (289, 84, 84)
    for k, (i, j) in {0: (0, 0), 18: (5, 5), 288: (80, 80), 100: (25, 75)}.items():
        np.testing.assert_allclose(masks[k].numpy(), get_mask([i, j], [84, 84], 5), atol=1e-6)
    images = np.random.RandomState(0).rand(2, 3, 84, 84)
    np.testing.assert_allclose(perturbation.gaussian_filter(torch.from_numpy(images), 3.0).numpy(),
                               gaussian_filter(images, sigma=(0, 0, 3, 3)), atol=1e-12)


@pytest.mark.slow
def test_actor_and_critic_maps_match_the_per_mask_loop():
    torch.manual_seed(0)
    model = ActorCritic("cnn_sparse_fls", 4).eval()
    obs = torch.randint(0, 256, (2, 4, 84, 84), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    for method, head in ((perturbation.perturbation_actor, 0), (perturbation.perturbation_critic, 1)):
        def output(image):
            x = torch.from_numpy(image[None].astype(np.float32))
            with torch.no_grad():
                return np.atleast_1d(model.forward_scaled(x)[head][0].double().numpy())

        maps = method(model, obs).numpy()
        for n in range(2):
            expected = reference_map(output, obs[n].numpy() / 255.0)
            np.testing.assert_allclose(maps[n], expected, rtol=2e-3, atol=2e-3 * expected.max())


def test_linear_model_scores_in_closed_form():
    # logits W x: the score of mask M is 1/2 ||W (M * (G3(x) - x))||^2, with every frame blurred alike.
    model = Linear(n_actions=2)
    obs = torch.randint(0, 256, (1, 4, 84, 84), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    x = obs[0].double().numpy() / 255
    delta = np.stack([gaussian_filter(f, sigma=3) for f in x]) - x
    scores = perturbation.perturbation_scores(model, obs)[0].numpy()
    w = model.w.double().numpy()
    for (i, j) in ((0, 0), (8, 3), (16, 16)):
        change = w @ (get_mask([5 * i, 5 * j], [84, 84], 5) * delta).ravel()
        np.testing.assert_allclose(scores[i, j], 0.5 * change @ change, rtol=1e-4)


def test_constant_scores_give_a_zero_map():
    assert torch.equal(perturbation.upsample_scores(torch.full((1, 17, 17), 2.0)), torch.zeros(1, 84, 84))
