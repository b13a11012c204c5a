"""The Nature DQN network (Mnih et al. 2015) as Stable-Baselines3's ``NatureCNN`` and CleanRL's
``ppo_atari`` / ``dqn_atari`` build it, rebuilt here in plain torch so that their saved weights
load without importing either library: three convolutions (32 8x8/4, 64 4x4/2, 64 3x3/1) with
ReLUs, flattened channels first, a 512-unit ReLU layer, then a linear head of action scores and
optionally one of the value.
"""

from __future__ import annotations

import torch
from torch import nn

from fl_saliency.agents.base import Agent, AgentSource
from fl_saliency.common.errors import FlSaliencyError

LATENT = 512


class NatureTrunk(nn.Module):
    """The convolutions and the 512-unit layer: float (N, C, 84, 84) -> (N, 512)."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        self.linear = nn.Sequential(nn.Linear(64 * 7 * 7, LATENT), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(x))


# The parameters of a trunk in its own state dict, in order: conv, conv, conv, linear.
TRUNK_PARAMETERS = ("cnn.0", "cnn.2", "cnn.4", "linear.0")


class NatureAgent(Agent):
    """A Nature-CNN agent: a trunk, a head of action scores and optionally a value head.

    Args:
        n_actions: the action count A.
        source: where it came from.
        value: whether it has a value head.
        separate_value_trunk: the value head reads a trunk of its own (SB3 with
            ``share_features_extractor=False``).
        quantiles: QR-DQN's quantiles per action (the scores are their mean); 0 for one score per action.
        pixel_scale: what the network divides the frames by: 255 (SB3 with ``normalize_images``,
            CleanRL), or 1 (SB3 without).

    Example:
        >>> import torch
        >>> agent = NatureAgent(6, AgentSource("cleanrl", "PPO", "uint8 (4, 84, 84) channels first, / 255"), value=True)
        >>> scores, value, _ = agent(torch.zeros(3, 4, 84, 84, dtype=torch.uint8))
        >>> tuple(scores.shape), tuple(value.shape)
        ((3, 6), (3,))
    """

    def __init__(self, n_actions: int, source: AgentSource, value: bool = False, separate_value_trunk: bool = False,
                 quantiles: int = 0, pixel_scale: float = 255.0):
        super().__init__()
        self.n_actions = n_actions
        self.source = source
        self.has_value = value
        self.scores_kind = "logits" if value else "q-values"  # the actor-critics' heads are policies, the rest Q
        self.quantiles = quantiles
        self.pixel_scale = pixel_scale
        self.trunk = NatureTrunk()
        self.value_trunk = NatureTrunk() if separate_value_trunk else None
        self.scores = nn.Linear(LATENT, n_actions * max(quantiles, 1))
        self.value = nn.Linear(LATENT, 1) if value else None

    @property
    def last_conv(self) -> nn.Conv2d:
        return self.trunk.cnn[4]

    def forward_scaled(self, x: torch.Tensor):
        if self.pixel_scale != 255.0:
            x = x * (255.0 / self.pixel_scale)
        latent = self.trunk(x)
        scores = self.scores(latent)
        if self.quantiles:
            scores = scores.view(len(x), self.quantiles, self.n_actions).mean(dim=1)
        value = None
        if self.value is not None:
            value = self.value(latent if self.value_trunk is None else self.value_trunk(x))[:, 0]
        return scores, value, None


def load_renamed(agent: NatureAgent, state: dict[str, torch.Tensor], names: dict[str, str], what: str) -> NatureAgent:
    """Load ``state[names[ours]]`` into each parameter ``ours`` of ``agent``; one line for a missing or misshapen one.

    Args:
        agent: a freshly built ``NatureAgent``.
        state: the saved tensors.
        names: our parameter name -> the file's name, for every parameter of ``agent``.
        what: the file, for messages.

    Returns:
        ``agent`` with the weights, in eval mode.
    """
    ours = agent.state_dict()
    for name, like in ours.items():
        theirs = state.get(names[name])
        if not isinstance(theirs, torch.Tensor):
            raise FlSaliencyError(f"{what} has no tensor {names[name]!r}")
        if theirs.shape != like.shape:
            raise FlSaliencyError(f"{what}: {names[name]} has shape {list(theirs.shape)}, expected {list(like.shape)}")
    agent.load_state_dict({name: state[names[name]].float() for name in ours})
    return agent.eval()


def trunk_names(prefix: str, layers: tuple[str, ...], ours: str = "trunk") -> dict[str, str]:
    """Our trunk's parameter names -> ``prefix + layer`` for the file's four layers, in ``TRUNK_PARAMETERS``'s order."""
    return {f"{ours}.{mine}.{kind}": f"{prefix}{theirs}.{kind}"
            for mine, theirs in zip(TRUNK_PARAMETERS, layers) for kind in ("weight", "bias")}
