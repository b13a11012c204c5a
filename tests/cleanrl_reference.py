"""CleanRL's Atari networks, built after the layout of CleanRL's scripts (vwxyzjn/cleanrl ppo_atari.py and
dqn_atari.py: the Nature CNN as ``network``, PPO's ``actor`` and ``critic`` heads, DQN's Q-value head), as an
independent reference for the CleanRL adapter; the cleanrl package itself is not installed."""

from __future__ import annotations

from torch import nn


def nature_layers() -> list[nn.Module]:
    return [nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU()]


class PPOAgent(nn.Module):
    """ppo_atari's Agent: ``network``, ``actor`` (init std 0.01), ``critic`` (std 1), frames / 255."""

    def __init__(self, n_actions: int):
        super().__init__()
        self.network = nn.Sequential(*nature_layers())
        self.actor = nn.Linear(512, n_actions)
        self.critic = nn.Linear(512, 1)
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                std = 0.01 if layer is self.actor else 1.0 if layer is self.critic else 2 ** 0.5
                nn.init.orthogonal_(layer.weight, std)
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        hidden = self.network(x / 255.0)
        return self.actor(hidden), self.critic(hidden)


class QNetwork(nn.Module):
    """dqn_atari's QNetwork: the Nature CNN and the Q head in one ``network``, frames / 255."""

    def __init__(self, n_actions: int):
        super().__init__()
        self.network = nn.Sequential(*nature_layers(), nn.Linear(512, n_actions))

    def forward(self, x):
        return self.network(x / 255.0)
