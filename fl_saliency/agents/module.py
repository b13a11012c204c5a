"""Any torch module or Python callable as an agent, TorchScript files included: it maps frames
(N, 4, 84, 84) to action scores (N, A), or to a tuple (scores, value, ...).

The module receives float32 frames holding the 0-255 pixel values (or those / 255 with
``scaled_input``), never uint8: the saliency methods differentiate and blend their inputs, so
one input type serves acting and explaining alike. A module written for uint8 frames that scales
them itself (``x / 255.0``, ``x.float() / 255``) takes these unchanged.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from fl_saliency.agents.base import OBSERVATION_SHAPE, Agent, AgentSource, check_observations
from fl_saliency.common.errors import FlSaliencyError


def layout(scaled_input: bool = False, channels_last: bool = False) -> str:
    """The observation layout a module agent reads, in ``AgentSource.observation``'s words."""
    frames = "(84, 84, 4) channels last" if channels_last else "(4, 84, 84) channels first"
    return f"float32 {frames}{', / 255' if scaled_input else ' (0-255 values)'}"


class ModuleAgent(Agent):
    """A module or callable that returns scores or (scores, value, ...), probed once to learn its action count.

    Args:
        module: a ``torch.nn.Module`` (TorchScript included) or a callable on tensors.
        source: where it came from; by default ``python``.
        scaled_input: the module takes float frames / 255 rather than 0-255 pixel values.
        channels_last: the module takes (N, 84, 84, 4).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 84 * 84, 4))
        >>> agent = ModuleAgent(lambda x: (net(x / 255.0), x.float().mean(dim=(1, 2, 3))))
        >>> agent.n_actions, agent.has_value
        (4, True)
    """

    def __init__(self, module: nn.Module | Callable, source: AgentSource | None = None, *,
                 scaled_input: bool = False, channels_last: bool = False):
        super().__init__()
        if not callable(module):
            raise FlSaliencyError(f"an agent must be a torch module or a callable, got {type(module).__name__}")
        self.module = module  # an nn.Module registers as a submodule (its parameters move with .to())
        self.scaled_input = scaled_input
        self.channels_last = channels_last
        self.source = source or AgentSource("python", type(module).__name__, layout(scaled_input, channels_last))
        parameter = next(module.parameters(), None) if isinstance(module, nn.Module) else None
        probe = torch.zeros(1, *OBSERVATION_SHAPE, dtype=torch.uint8,
                            device=parameter.device if parameter is not None else "cpu")
        with torch.no_grad():
            scores, value, _ = self(probe)
        self.n_actions = scores.shape[1]
        self.has_value = value is not None

    @property
    def torch_module(self) -> nn.Module:
        return self.module if isinstance(self.module, nn.Module) else self

    def _call(self, x: torch.Tensor):
        if self.channels_last:
            x = x.permute(0, 2, 3, 1)
        return self._outputs(self.module(x), len(x))

    def _outputs(self, out, n: int):
        scores = out[0] if isinstance(out, (tuple, list)) else out
        value = out[1] if isinstance(out, (tuple, list)) and len(out) > 1 else None
        if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or scores.shape[0] != n:
            got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise FlSaliencyError(f"{self.source.path or 'the agent'} must return action scores (N, A) for "
                                  f"frames (N, 4, 84, 84), got {got} for N = {n}")
        if value is not None:
            if not isinstance(value, torch.Tensor) or value.numel() != n:
                raise FlSaliencyError(f"{self.source.path or 'the agent'} returned a second output that is not "
                                      "one value per observation")
            value = value.reshape(n)
        return scores.float(), value, None

    def forward(self, obs: torch.Tensor):
        check_observations(obs)
        return self._call(obs.float().div(255.0) if self.scaled_input else obs.float())

    def forward_scaled(self, x: torch.Tensor):
        return self._call(x if self.scaled_input else x * 255.0)


def load_torchscript(path: str, **options) -> ModuleAgent:
    """A TorchScript file (``torch.jit.save``) as an agent; ``options`` as ``ModuleAgent``'s.

    Example:
        >>> agent = load_torchscript("agent.pt")  # doctest: +SKIP
    """
    try:
        module = torch.jit.load(path, map_location="cpu")
    except (RuntimeError, OSError, ValueError) as exc:
        raise FlSaliencyError(f"{path} is not a readable TorchScript module ({str(exc).splitlines()[0]})") from None
    source = AgentSource("torchscript", getattr(module, "original_name", "module"), layout(**options), path)
    try:
        return ModuleAgent(module.eval(), source, **options)
    except RuntimeError as exc:
        raise FlSaliencyError(f"{path} fails on frames (1, 4, 84, 84): {str(exc).splitlines()[0]}") from None
