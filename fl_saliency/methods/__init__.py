"""Saliency maps of an agent, one signature for every method: ``METHODS[name](model, obs, actions) -> maps``.

``obs`` is a uint8 batch (N, 4, 84, 84) on the model's device, ``actions`` the actions (N,) the
maps explain; a map is float32 (N, 84, 84) on the input's grid, larger = more salient. Nothing
here knows of Atari-HEAD: the benchmark (scoring/benchmark.py) feeds the frames and scores the maps.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.settings import import_callable, register
from fl_saliency.methods.attention import network_attention, require_attention
from fl_saliency.methods.gradients import gradcam, gradient, integrated_gradients, last_conv, smoothgrad
from fl_saliency.methods.perturbation import perturbation_actor, perturbation_critic, require_value
from fl_saliency.methods.rise import rise_saliency

Method = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""The one signature: ``method(agent, observations, actions) -> maps`` (uint8 (N, 4, 84, 84) in, float (N, 84, 84) out)."""

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
"""Every saliency method by name, built-in and registered (``register_method``)."""


BUILTIN_METHODS = tuple(METHODS)


def register_method(name: str, method: Method) -> None:
    """Run ``method`` like the built-in saliency methods (``explain``, ``saliency``, ``faithfulness``).

    Args:
        name: its name in ``METHODS`` and in output files (``saliency.<name>.pkl``); not a built-in one.
        method: ``method(agent, observations, actions) -> maps``: ``observations`` uint8 (N, 4, 84, 84)
            on the agent's device, ``actions`` (N,) the actions to explain, maps float (N, 84, 84),
            larger = more salient.

    Raises:
        FlSaliencyError: for a built-in name, a name unfit for a file name, or a method that is not callable.

    Example:
        >>> import torch
        >>> register_method("brightness", lambda agent, obs, actions: obs[:, -1].float())
        >>> "brightness" in METHODS
        True
        >>> del METHODS["brightness"]
    """
    register(METHODS, BUILTIN_METHODS, "saliency method", name, method)


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names -> the list, each known and named once (ValueError naming the problem).

    A name ``package.module:function`` imports that function and registers it under ``function``'s name.
    """
    names = []
    for name in (part.strip() for part in text.split(",")):
        if ":" in name:
            function = import_callable(name)
            name = name.rpartition(":")[2]
            try:
                register_method(name, function)
            except FlSaliencyError as exc:
                raise ValueError(str(exc)) from None
        names.append(name)
    check_methods(names, error=ValueError)
    return names


def parse_method(text: str) -> str:
    """One method name (``parse_methods``'s rules); ValueError for a list."""
    names = parse_methods(text)
    if len(names) != 1:
        raise ValueError(f"one saliency method, not {len(names)}: {text}")
    return names[0]


def check_methods(names, error: type[Exception] = FlSaliencyError) -> None:
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise error(f"unknown saliency method {unknown[0]!r}; choose from: {', '.join(METHODS)} "
                    "or package.module:function")
    if not names:
        raise error("no saliency method given")
    if len(set(names)) != len(names):
        raise error(f"a saliency method is named twice in {','.join(names)}")


def check_agent_methods(agent, names) -> None:
    """One line, before any work, for a method the agent cannot give: ``attention`` without attention of its
    own, ``perturbation-critic`` without a value head, ``gradcam`` without a last convolution to read."""
    if "attention" in names:
        require_attention(agent)
    if "perturbation-critic" in names:
        require_value(agent)
    if "gradcam" in names:
        last_conv(agent)


def greedy_actions(logits: torch.Tensor) -> torch.Tensor:
    """The action a map explains when the agent did not act: the policy's most probable one."""
    return logits.argmax(dim=1)


def explain(agent: torch.nn.Module | Callable, observations: np.ndarray | torch.Tensor, method: str,
            actions: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Saliency maps of any agent's decisions.

    Args:
        agent: an ``Agent`` (``fl_saliency.agents.load_agent``), one of this project's networks, or
            any module or callable mapping frames (N, 4, 84, 84) to action scores (see
            ``fl_saliency.agents.agent_from_module``).
        observations: uint8 frames (N, 4, 84, 84), a NumPy array or a tensor.
        method: a name in ``METHODS``.
        actions: the actions (N,) the maps explain; None explains the agent's highest-scoring ones.

    Returns:
        float32 maps (N, 84, 84), larger = more salient.

    Raises:
        FlSaliencyError: one line, for an unknown method, frames of another shape or type, or a
            method the agent cannot give (``attention`` without attention of its own,
            ``perturbation-critic`` without a value head).

    Example:
        >>> import numpy as np, torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 84 * 84, 4))
        >>> frames = np.random.default_rng(0).integers(0, 256, (2, 4, 84, 84), dtype=np.uint8)
        >>> explain(net, frames, "gradient").shape
        (2, 84, 84)
    """
    from fl_saliency.agents import agent_from_module, check_observations

    agent = agent_from_module(agent)
    check_methods([method])
    parameter = next(agent.parameters(), None)
    obs = torch.as_tensor(observations).to(parameter.device if parameter is not None else "cpu")
    check_observations(obs)
    if actions is None:
        with torch.no_grad():
            actions = greedy_actions(agent(obs)[0])
    actions = torch.as_tensor(actions, dtype=torch.long, device=obs.device)
    if actions.shape != (len(obs),):
        raise FlSaliencyError(f"actions must be one per observation ({len(obs)}), got shape {tuple(actions.shape)}")
    return METHODS[method](agent, obs, actions).detach().float().cpu().numpy()
