"""Gradient saliency, reduced to one map per observation by the maximum over the four stacked frames.

- ``gradient``: |d logit(action) / d input| (Simonyan et al. 2014), captum ``Saliency(abs=True)``.
- ``smoothgrad``: the mean of that over 50 noisy copies, noise N(0, 0.15^2) on inputs in [0, 1]
  (Smilkov et al. 2017: noise of 10-20% of the input range, 50 samples), captum
  ``NoiseTunnel(Saliency)``.
- ``integrated-gradients``: Sundararajan et al. 2017, zero (black) baseline, 50 steps of the
  paper's right Riemann sum, |attribution|; captum ``IntegratedGradients(method='riemann_right')``.
- ``gradcam``: Selvaraju et al. 2017 on the last convolution ``c3``, captum ``LayerGradCam``:
  ReLU(sum_k mean(d logit / d A_k) A_k) with A the convolution's output (captum's hook point:
  the networks apply the ReLU after it as a function), bilinear (half-pixel centres) to 84x84.
Gradients are taken with respect to the scaled input (uint8 / 255).
"""

from __future__ import annotations

import torch

from fl_saliency.errors import FlSaliencyError
from fl_saliency.networks import scale_observation

SMOOTHGRAD_SAMPLES = 50
SMOOTHGRAD_STDEV = 0.15
IG_STEPS = 50
CHUNK = 256  # inputs per forward and backward pass


def _logits(model):
    return lambda x: model.forward_scaled(x)[0]


def _scaled(obs: torch.Tensor) -> torch.Tensor:
    return scale_observation(obs).requires_grad_()


def gradient(model, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    from captum.attr import Saliency

    with torch.enable_grad():
        return Saliency(_logits(model)).attribute(_scaled(obs), target=actions, abs=True).amax(dim=1).detach()


def smoothgrad(model, obs: torch.Tensor, actions: torch.Tensor, samples: int = SMOOTHGRAD_SAMPLES,
               stdev: float = SMOOTHGRAD_STDEV) -> torch.Tensor:
    from captum.attr import NoiseTunnel, Saliency

    tunnel = NoiseTunnel(Saliency(_logits(model)))
    with torch.enable_grad():
        maps = tunnel.attribute(_scaled(obs), nt_type="smoothgrad", nt_samples=samples, stdevs=stdev,
                                nt_samples_batch_size=max(1, CHUNK // len(obs)), target=actions, abs=True)
    return maps.amax(dim=1).detach()


def integrated_gradients(model, obs: torch.Tensor, actions: torch.Tensor, steps: int = IG_STEPS) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    with torch.enable_grad():
        maps = IntegratedGradients(_logits(model)).attribute(
            _scaled(obs), baselines=0.0, target=actions, n_steps=steps, method="riemann_right",
            internal_batch_size=CHUNK)
    return maps.abs().amax(dim=1).detach()


def last_conv(model) -> torch.nn.Conv2d:
    """The last convolution before the heads (``c3``)."""
    extractor = model.extractor
    layer = getattr(getattr(extractor, "features", extractor), "c3", None)
    if not isinstance(layer, torch.nn.Conv2d):
        raise FlSaliencyError(f"gradcam needs a last convolution c3, which network {model.network!r} lacks")
    return layer


def gradcam(model, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    with torch.enable_grad():
        cam = LayerGradCam(_logits(model), last_conv(model)).attribute(
            scale_observation(obs), target=actions, relu_attributions=True)
    return LayerAttribution.interpolate(cam.detach(), obs.shape[-2:], "bilinear")[:, 0]
