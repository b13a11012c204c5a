"""Gradient saliency (fl_saliency/methods/gradients.py) against closed forms on tiny models."""

import numpy as np
import pytest
import torch
from PIL import Image

from explain_models import ConvThenLinear, Linear, Quadratic, one_thread  # noqa: F401 (autouse fixture)
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.methods import gradients
from fl_saliency.agents.networks import ActorCritic


@pytest.fixture
def obs():
    return torch.randint(0, 256, (2, 4, 84, 84), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


ACTIONS = torch.tensor([2, 0])


def test_gradient_of_a_linear_model_is_its_weights(obs):
    model = Linear()
    expected = model.w[ACTIONS].abs().view(2, 4, 84, 84).amax(1)
    torch.testing.assert_close(gradients.gradient(model, obs, ACTIONS), expected)


def test_smoothgrad_of_a_linear_model_ignores_the_noise(obs):
    model = Linear()
    expected = model.w[ACTIONS].abs().view(2, 4, 84, 84).amax(1)
    torch.testing.assert_close(gradients.smoothgrad(model, obs, ACTIONS, samples=5), expected)


def test_smoothgrad_noise_level_and_averaging():
    # For sum_i W_i x_i^2 at x = 0 the gradient at x + e is 2 W e, so SmoothGrad of |grad| is
    # 2 |W| E|e| = 2 |W| 0.15 sqrt(2 / pi); W is zero on frames 1-3 so the max over frames is frame 0's.
    model = Quadratic(n_actions=1)
    model.w.view(1, 4, 84, 84)[:, 1:] = 0
    torch.manual_seed(0)
    maps = gradients.smoothgrad(model, torch.zeros(1, 4, 84, 84, dtype=torch.uint8), torch.tensor([0]), samples=200)
    expected = 2 * model.w.view(4, 84, 84)[0].abs() * 0.15 * np.sqrt(2 / np.pi)
    ratio = maps[0] / expected
    assert abs(float(ratio.mean()) - 1) < 0.01 and float((ratio - 1).abs().quantile(0.95)) < 0.15


def test_integrated_gradients_right_riemann_sum_closed_form(obs):
    model = Quadratic()
    x = obs.double() / 255
    for steps in (50, 4):
        expected = (model.w[ACTIONS].double().view(2, 4, 84, 84) * x.square() * (steps + 1) / steps).abs().amax(1)
        torch.testing.assert_close(gradients.integrated_gradients(model, obs, ACTIONS, steps=steps).double(), expected,
                                   rtol=1e-4, atol=1e-9)


def test_integrated_gradients_of_a_linear_model_is_input_times_weight(obs):
    model = Linear()
    expected = (model.w[ACTIONS].view(2, 4, 84, 84) * obs.float() / 255).abs().amax(1)
    torch.testing.assert_close(gradients.integrated_gradients(model, obs, ACTIONS), expected, rtol=1e-4, atol=1e-8)


def bilinear(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))


def test_gradcam_closed_form_with_pil_upsampling(obs):
    model = ConvThenLinear()
    block = model.extractor.features
    with torch.no_grad():
        x = obs.float() / 255
        z = block.c3(torch.relu(block.c2(torch.relu(block.c1(x))))).numpy()
    v = model.v.numpy()
    maps = gradients.gradcam(model, obs, ACTIONS).numpy()
    for n, action in enumerate(ACTIONS.tolist()):
        alpha = (v[action] * (z[n] > 0)).mean(axis=(1, 2))
        cam = np.maximum((alpha[:, None, None] * z[n]).sum(0), 0)
        assert cam.max() > 0
        np.testing.assert_allclose(maps[n], bilinear(cam, 84), rtol=1e-4, atol=1e-6 * cam.max())


def test_gradcam_runs_on_every_kind_of_network(obs):
    for network in ("cnn_sparse_fls_x3",):  # c3 outside a ConvBlock; ConvThenLinear has it inside
        torch.manual_seed(0)
        model = ActorCritic(network, 4).eval()
        maps = gradients.gradcam(model, obs, ACTIONS)
        assert maps.shape == (2, 84, 84) and bool((maps >= 0).all()) and maps.max() > 0


def test_gradcam_refuses_a_network_without_a_last_convolution(obs):
    model = Linear()
    model.extractor, model.network = torch.nn.Module(), "linear"
    with pytest.raises(FlSaliencyError, match="gradcam needs a last convolution c3.*'linear'"):
        gradients.gradcam(model, obs, ACTIONS)


def sparse_model_and_observations(n: int):
    torch.manual_seed(0)
    model = ActorCritic("cnn_sparse_fls", 4).eval()
    obs = torch.randint(0, 256, (n, 4, 84, 84), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    return model, obs, torch.arange(n) % 4


@pytest.mark.parametrize("n, chunk", [(2, 256), (2, 4), (5, 3)])
def test_smoothgrad_equals_captum_noise_tunnel_for_a_seed(n, chunk, monkeypatch):
    # chunk 4 with 2 observations: passes of 2 samples (captum's nt_samples_batch_size) and a remainder of 1;
    # chunk 3 with 5 observations: one sample a pass, 5 inputs each
    from captum.attr import NoiseTunnel, Saliency

    monkeypatch.setattr(gradients, "INPUTS_PER_PASS", chunk)
    model, obs, actions = sparse_model_and_observations(n)
    torch.manual_seed(7)
    ours = gradients.smoothgrad(model, obs, actions, samples=7)
    torch.manual_seed(7)
    x = obs.float().div(255).requires_grad_()
    with torch.enable_grad():
        theirs = NoiseTunnel(Saliency(lambda x: model.forward_scaled(x)[0])).attribute(
            x, nt_type="smoothgrad", nt_samples=7, stdevs=gradients.SMOOTHGRAD_STDEV,
            nt_samples_batch_size=max(1, chunk // n), target=actions, abs=True)
    torch.testing.assert_close(ours, theirs.detach().amax(1), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("n, chunk", [(2, 256), (2, 5), (5, 3)])
def test_integrated_gradients_equals_captum(n, chunk, monkeypatch):
    # chunk 5 with 2 observations: passes of 2 steps; chunk 3 with 5 observations: chunks of 3 and 2, a step a pass
    from captum.attr import IntegratedGradients

    monkeypatch.setattr(gradients, "INPUTS_PER_PASS", chunk)
    model, obs, actions = sparse_model_and_observations(n)
    ours = gradients.integrated_gradients(model, obs, actions, steps=7)
    x = obs.float().div(255).requires_grad_()
    with torch.enable_grad():
        theirs = IntegratedGradients(lambda x: model.forward_scaled(x)[0]).attribute(
            x, baselines=0.0, target=actions, n_steps=7, method="riemann_right")
    torch.testing.assert_close(ours, theirs.detach().abs().amax(1), rtol=1e-4, atol=1e-9)
