"""Baselines' Monitor accounting, one home for both backends: each environment's game score
(unclipped, all lives) and length, reported as ``{"r", "l", "t"}`` when the game ends."""

from __future__ import annotations

import time

import numpy as np


class EpisodeTally:
    """Running return and length of the current game of ``num_envs`` environments; ``t`` of an
    episode is the seconds since the tally started (Baselines: since the Monitor was made)."""

    def __init__(self, num_envs: int):
        self.t_start = time.time()
        self.returns = np.zeros(num_envs, np.float64)
        self.lengths = np.zeros(num_envs, np.int64)

    def restart(self) -> None:
        """Every environment starts a new game."""
        self.returns[:] = 0.0
        self.lengths[:] = 0

    def add(self, rewards) -> None:
        """One step of every environment, with its raw rewards."""
        self.returns += rewards
        self.lengths += 1

    def finish(self, ended: np.ndarray) -> dict[int, dict]:
        """The episodes of the environments whose game ``ended`` (by rank); their tallies restart."""
        now = round(time.time() - self.t_start, 6)
        episodes = {int(i): {"r": round(float(self.returns[i]), 6), "l": int(self.lengths[i]), "t": now}
                    for i in np.flatnonzero(ended)}
        self.returns[ended] = 0.0
        self.lengths[ended] = 0
        return episodes
