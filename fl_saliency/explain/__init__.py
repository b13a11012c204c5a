"""Saliency maps of an agent, one signature for every method: ``METHODS[name](model, obs, actions) -> maps``.

``obs`` is a uint8 batch (N, 4, 84, 84) on the model's device, ``actions`` the actions (N,) the
maps explain; a map is float32 (N, 84, 84) on the input's grid, larger = more salient. Nothing
here knows of Atari-HEAD: the benchmark (atari_head/benchmark.py) feeds the frames and scores the maps.
"""

from __future__ import annotations

from typing import Callable

import torch

from fl_saliency.errors import FlSaliencyError
from fl_saliency.explain.attention import network_attention
from fl_saliency.explain.gradients import gradcam, gradient, integrated_gradients, smoothgrad
from fl_saliency.explain.perturbation import perturbation_actor, perturbation_critic
from fl_saliency.explain.rise import rise_saliency

Method = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

METHODS: dict[str, Method] = {
    "attention": network_attention,
    "perturbation": perturbation_actor,
    "perturbation-critic": perturbation_critic,
    "gradient": gradient,
    "smoothgrad": smoothgrad,
    "integrated-gradients": integrated_gradients,
    "gradcam": gradcam,
    "rise": rise_saliency,
}


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names -> the list, each known and named once (ValueError naming the problem)."""
    names = [name.strip() for name in text.split(",")]
    check_methods(names, error=ValueError)
    return names


def check_methods(names, error: type[Exception] = FlSaliencyError) -> None:
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise error(f"unknown saliency method {unknown[0]!r}; choose from: {', '.join(METHODS)}")
    if not names:
        raise error("no saliency method given")
    if len(set(names)) != len(names):
        raise error(f"a saliency method is named twice in {','.join(names)}")


def greedy_actions(logits: torch.Tensor) -> torch.Tensor:
    """The action a map explains when the agent did not act: the policy's most probable one."""
    return logits.argmax(dim=1)
