"""fl-saliency: saliency maps of Atari agents, scored against human gaze and the agent itself.

The public API, in the order of the pipeline:

- ``load_agent(path)``: an agent from this project's or the paper's runs, a Stable-Baselines3
  zip, a CleanRL state dict or a TorchScript file; ``agent_from_module`` wraps any module.
- ``explain(agent, observations, method)``: saliency maps (N, 84, 84) by any method of
  ``METHODS``, each a ``Method``: ``method(agent, observations, actions) -> maps``;
  ``register_method`` adds yours.
- ``score(maps, fixations, metric)``: maps against human fixations by any metric of ``METRICS``,
  each a ``GazeMetric``: ``metric(saliency_map, gaze: Gaze) -> float``; ``register_metric`` adds yours.

Example:
    >>> import numpy as np, torch, fl_saliency
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 84 * 84, 4))
    >>> agent = fl_saliency.agent_from_module(net)
    >>> frames = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)
    >>> maps = fl_saliency.explain(agent, frames, "gradient")
    >>> fixations = np.zeros((3, 84, 84), int); fixations[:, 42, 42] = 1
    >>> fl_saliency.score(maps, fixations, "nss", sigma=2.0).shape
    (3,)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"
"""The package's version."""

# Where each public name lives. They load on first use, so that `fl-saliency --help` and the command list
# import neither PyTorch nor the scoring code.
_PUBLIC = {
    "Agent": "fl_saliency.agents", "agent_from_module": "fl_saliency.agents", "load_agent": "fl_saliency.agents",
    "METHODS": "fl_saliency.methods", "Method": "fl_saliency.methods", "explain": "fl_saliency.methods",
    "register_method": "fl_saliency.methods",
    "METRICS": "fl_saliency.scoring.gaze_metrics", "Gaze": "fl_saliency.scoring.gaze_metrics",
    "GazeMetric": "fl_saliency.scoring.gaze_metrics", "register_metric": "fl_saliency.scoring.gaze_metrics",
    "score": "fl_saliency.scoring.gaze_metrics",
}

if TYPE_CHECKING:  # what documentation tools and type checkers read
    from fl_saliency.agents import Agent, agent_from_module, load_agent
    from fl_saliency.scoring.gaze_metrics import METRICS, Gaze, GazeMetric, register_metric, score
    from fl_saliency.methods import METHODS, Method, explain, register_method

__all__ = ["Agent", "Gaze", "GazeMetric", "METHODS", "METRICS", "Method", "agent_from_module", "explain",
           "load_agent", "register_method", "register_metric", "score", "__version__"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'fl_saliency' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
