"""fl-saliency: saliency maps of Atari agents, scored against human gaze and the agent itself.

The public API, in the order of the pipeline:

- ``load_agent(path)``: an agent from this project's or the paper's runs, a Stable-Baselines3
  zip, a CleanRL state dict or a TorchScript file; ``agent_from_module`` wraps any module.
- ``explain(agent, observations, method)``: saliency maps (N, 84, 84) by any method of
  ``METHODS``; ``register_method`` adds yours.
- ``score(maps, fixations, metric)``: maps against human fixations by any metric of ``METRICS``
  (one signature, ``metric(saliency_map, gaze: Gaze) -> float``); ``register_metric`` adds yours.

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

__version__ = "0.1.0"  # before the imports: fl_saliency.train reads it

from fl_saliency.agents import Agent, agent_from_module, load_agent
from fl_saliency.atari_head.metrics import METRICS, Gaze, GazeMetric, register_metric, score
from fl_saliency.explain import METHODS, Method, explain, register_method


__all__ = ["Agent", "Gaze", "GazeMetric", "METHODS", "METRICS", "Method", "agent_from_module", "explain",
           "load_agent", "register_method", "register_metric", "score", "__version__"]
