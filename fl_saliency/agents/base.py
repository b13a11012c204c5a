"""The one interface every agent meets, whatever library trained it.

An ``Agent`` is a ``torch.nn.Module``: called on uint8 frames (N, 4, 84, 84), channels first
(the oldest of the four stacked frames first), it returns ``(scores, value, attention)``:
the raw action scores (N, A) before any softmax (policy logits or Q-values), the state value
(N,) or None, and the network's own attention map on its grid (N, H, W) or None. The saliency
methods (fl_saliency/methods/) call ``forward_scaled`` on the frames divided by 255, so that
gradients are taken with respect to the same input for every agent; each adapter turns those
into the layout and scaling its network was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.agents.networks import AttentionGeometry, scale_observation

FRAMES, SIZE = 4, 84
OBSERVATION_SHAPE = (FRAMES, SIZE, SIZE)


@dataclass(frozen=True)
class AgentSource:
    """Where an agent comes from and what observations its network was trained on.

    Args:
        library: who trained it: ``"fl-saliency"``, ``"stable-baselines3"``, ``"sb3-contrib"``,
            ``"cleanrl"``, ``"torchscript"`` or ``"python"``.
        algorithm: ``"PPO"``, ``"A2C"``, ``"DQN"``, ``"QR-DQN"``, or the network's name.
        observation: the frames its network reads, e.g. ``"uint8 (4, 84, 84) channels first, / 255"``.
        path: the file or folder it was loaded from ("" from Python).
        network: the architecture, e.g. ``"NatureCNN"`` or ``"cnn_sparse_fls"``.
        env_name: the game, where the file records it ("" where it does not).

    Example:
        >>> AgentSource("cleanrl", "PPO", "uint8 (4, 84, 84) channels first, / 255").library
        'cleanrl'
    """

    library: str
    algorithm: str
    observation: str
    path: str = ""
    network: str = ""
    env_name: str = ""


class Agent(nn.Module):
    """An Atari agent: uint8 frames (N, 4, 84, 84) -> ``(scores (N, A), value (N,) | None, attention | None)``.

    Subclasses implement ``forward_scaled``. Attributes: ``n_actions``, ``scores_kind`` (``"logits"``,
    ``"q-values"`` or ``"scores"`` where the agent does not say), ``has_value`` (a value head:
    the ``-critic`` methods need it), ``has_attention`` (the network's own map, with its
    ``geometry`` on the input), ``source`` (an ``AgentSource``), ``last_conv`` (the convolution
    Grad-CAM reads, or None), ``torch_module`` (the module that gradients run through).

    Example:
        >>> import torch
        >>> from fl_saliency.agents import agent_from_module
        >>> agent = agent_from_module(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 84 * 84, 6)))
        >>> scores, value, attention = agent(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))
        >>> tuple(scores.shape), value, attention
        ((2, 6), None, None)
    """

    n_actions: int
    has_value: bool = False
    # "logits" (a policy: sample from their softmax), "q-values" (act greedily) or "scores" (not stated)
    scores_kind: str = "scores"
    geometry: AttentionGeometry | None = None
    source: AgentSource

    @property
    def has_attention(self) -> bool:
        """Whether the network computes an attention map of its own (the ``attention`` method)."""
        return self.geometry is not None

    @property
    def last_conv(self) -> nn.Conv2d | None:
        """The last convolution before the heads (Grad-CAM's layer), or None where there is none to name."""
        return None

    @property
    def torch_module(self) -> nn.Module:
        """The module that computes the scores, for tools that hook or differentiate through it."""
        return self

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The agent's outputs for uint8 frames.

        Args:
            obs: uint8 frames (N, 4, 84, 84), channels first.

        Returns:
            ``(scores (N, A), value (N,) or None, attention (N, H, W) or None)``.
        """
        check_observations(obs)
        return self.forward_scaled(scale_observation(obs))

    def forward_scaled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The same from float frames ``obs / 255`` (N, 4, 84, 84): what gradients are taken with respect to."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What the agent is, for ``inspect`` and model cards.

        Returns:
            a JSON-ready dict: ``library``, ``algorithm``, ``network``, ``path``, ``env_name``,
            ``observation``, ``n_actions``, ``scores_kind``, ``has_value``, ``has_attention``.

        Example:
            >>> import torch
            >>> from fl_saliency.agents import agent_from_module
            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 84 * 84, 6))
            >>> agent_from_module(net).describe()["n_actions"]
            6
        """
        return {**asdict(self.source), "n_actions": self.n_actions, "scores_kind": self.scores_kind,
                "has_value": self.has_value, "has_attention": self.has_attention}


def check_observations(obs: torch.Tensor) -> None:
    """One line unless ``obs`` is a uint8 tensor (N, 4, 84, 84)."""
    if not isinstance(obs, torch.Tensor) or obs.dtype != torch.uint8 or tuple(obs.shape[1:]) != OBSERVATION_SHAPE:
        got = f"{obs.dtype} {tuple(obs.shape)}" if isinstance(obs, torch.Tensor) else type(obs).__name__
        raise FlSaliencyError(f"an agent takes uint8 frames (N, 4, 84, 84), got {got}")


def check_action_count(n_actions: int, env_name: str | None, what: str, full_action_space: bool = False,
                       name_the_set: bool = True) -> None:
    """One line when ``what`` (an agent, a model file) has ``n_actions`` actions and ``env_name``'s action set (all 18
    with ``full_action_space``, else the game's minimal set) has another size; nothing without ``env_name``.

    ``name_the_set``: the line ends with the set, "(minimal action set)" or "(full action set)"; without it, as
    where a run's protocol or a command's flag chose the set, the line names only a full set, after the game.
    """
    if env_name is None:
        return
    from fl_saliency.envs.games import num_actions

    expected = num_actions(env_name, full_action_space)
    if n_actions == expected:
        return
    if name_the_set:
        kind = "full" if full_action_space else "minimal"
        raise FlSaliencyError(f"{what} has {n_actions} actions but {env_name} has {expected} ({kind} action set)")
    game = f"{env_name} with the full action space" if full_action_space else env_name
    raise FlSaliencyError(f"{what} has {n_actions} actions but {game} has {expected}")
