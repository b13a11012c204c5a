"""Gradient saliency, reduced to one map per observation by the maximum over the four stacked frames.

- ``gradient``: |d logit(action) / d input| (Simonyan et al. 2014), captum ``Saliency``.
- ``smoothgrad``: the mean of that over 50 noisy copies, noise N(0, 0.15^2) on inputs in [0, 1]
  (Smilkov et al. 2017: noise of 10-20% of the input range, 50 samples): captum
  ``NoiseTunnel(Saliency)``'s result, the same noise for the same seed, in passes of ``INPUTS_PER_PASS`` inputs.
- ``integrated-gradients``: Sundararajan et al. 2017, zero (black) baseline, 50 steps of the
  paper's right Riemann sum, |attribution|: captum ``IntegratedGradients(method='riemann_right')``'s
  result, the steps x observations inputs in passes of ``INPUTS_PER_PASS``.
- ``gradcam``: Selvaraju et al. 2017 on the last convolution ``c3``, captum ``LayerGradCam``:
  ReLU(sum_k mean(d logit / d A_k) A_k) with A the convolution's output (captum's hook point:
  the networks apply the ReLU after it as a function), bilinear (half-pixel centres) to 84x84.
Gradients are taken with respect to the scaled input (uint8 / 255). SmoothGrad and integrated
gradients build their inputs here rather than in captum's wrappers: those lay them out channels
first, on which the network's convolutions run slower than on the channels-last inputs it takes.
"""

from __future__ import annotations

import torch

from fl_saliency.agents.base import Agent
from fl_saliency.agents.experiment import actor_critic_last_conv
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.agents.networks import scale_observation

SMOOTHGRAD_SAMPLES = 50
SMOOTHGRAD_STDEV = 0.15
IG_STEPS = 50
INPUTS_PER_PASS = 256  # inputs per forward and backward pass


def _logits(model):
    return lambda x: model.forward_scaled(x)[0]


def _input_gradients(model, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """d logit(action) / d x for scaled inputs x (N, 4, 84, 84), captum ``Saliency``; its layout is x's."""
    from captum.attr import Saliency

    with torch.enable_grad():
        return Saliency(_logits(model)).attribute(x.requires_grad_(), target=actions, abs=False).detach()


def gradient(model, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return _input_gradients(model, scale_observation(obs), actions).abs_().amax(dim=1)


def smoothgrad(model, obs: torch.Tensor, actions: torch.Tensor, samples: int = SMOOTHGRAD_SAMPLES,
               stdev: float = SMOOTHGRAD_STDEV) -> torch.Tensor:
    x = scale_observation(obs).contiguous()  # channels-first, as the noise is drawn
    n, shape = len(x), x.shape[1:]
    per_pass = min(samples, max(1, INPUTS_PER_PASS // n))
    total = torch.zeros(n, shape.numel(), device=x.device)
    for first in range(0, samples, per_pass):
        count = min(per_pass, samples - first)
        # NoiseTunnel's draw for a pass of `count` samples: the inputs repeat_interleave'd plus normal(0, stdev)
        noisy = torch.empty(n, count, *shape, device=x.device).normal_(0, stdev).add_(x[:, None])
        noisy = noisy.view(n * count, *shape).contiguous(memory_format=torch.channels_last)
        grads = _input_gradients(model, noisy, actions.repeat_interleave(count)).abs_()
        total += grads.permute(0, 2, 3, 1).reshape(n, count, -1).sum(dim=1)  # channels-last memory: no copy
    return (total * (1 / samples)).view(n, *shape[1:], shape[0]).amax(dim=-1)


def integrated_gradients(model, obs: torch.Tensor, actions: torch.Tensor, steps: int = IG_STEPS) -> torch.Tensor:
    x = scale_observation(obs)
    alphas = torch.linspace(1 / steps, 1, steps, device=x.device)  # captum's riemann_right points, step 1 / steps
    total = torch.zeros_like(x)
    for first in range(0, len(x), INPUTS_PER_PASS):
        chunk, chunk_actions = x[first:first + INPUTS_PER_PASS], actions[first:first + INPUTS_PER_PASS]
        for alpha in alphas.split(max(1, INPUTS_PER_PASS // len(chunk))):
            path = (alpha.view(-1, 1, 1, 1, 1) * chunk).view(-1, *x.shape[1:])  # alpha-major, channels-last
            grads = _input_gradients(model, path, chunk_actions.repeat(len(alpha)))
            total[first:first + INPUTS_PER_PASS] += grads.view(len(alpha), *chunk.shape).sum(dim=0)
    return (total * (1 / steps) * x).abs().amax(dim=1)


def last_conv(model) -> torch.nn.Conv2d:
    """The last convolution before the heads (``c3`` of the 15 networks): an agent's ``last_conv``."""
    if isinstance(model, Agent):
        if model.last_conv is None:
            raise FlSaliencyError(f"gradcam needs a last convolution, which the {model.source.library} "
                                  f"{model.source.algorithm} agent does not name")
        return model.last_conv
    layer = actor_critic_last_conv(model)
    if layer is None:
        raise FlSaliencyError(f"gradcam needs a last convolution c3, which network {model.network!r} lacks")
    return layer


def gradcam(model, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    with torch.enable_grad():
        cam = LayerGradCam(_logits(model), last_conv(model)).attribute(
            scale_observation(obs), target=actions, relu_attributions=True)
    return LayerAttribution.interpolate(cam.detach(), obs.shape[-2:], "bilinear")[:, 0]
