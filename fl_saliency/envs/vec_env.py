"""The interface every vector environment of this package has (Baselines' VecEnv, typed).

Observations are uint8 (N, 4, 84, 84), oldest frame first; environment ``rank`` is seeded
``seed + rank``. ``step_wait`` returns ``rewards`` float32 (N,) clipped to their sign, ``dones``
bool (N,) the agent's done (a lost life included) and one info dict per environment: on a done
the observation already starts the next episode, its stack zeroed; ``infos[i]["episode"] =
{"r", "l", "t"}`` when environment i finished a full game (the Monitor's: all lives, unclipped
score, seconds since the environment started); with ``keep_rgb``, ``infos[i]["rgb"]`` is the
emulator's current 210x160 RGB screen (what Baselines' ``get_images()`` shows).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class VecEnv(Protocol):
    num_envs: int
    n_actions: int
    turns: Sequence[slice]
    """The ranks that each ``step_async`` / ``step_wait`` pair covers, in the order the env takes
    them: ``[slice(0, num_envs)]`` for an env that steps all its environments at once."""
    reset_infos: list[dict]
    """The info dicts of the last ``reset``."""

    def reset(self) -> np.ndarray:
        """New games in every environment; the first observations of all of them."""

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step of the next turn's environments with their actions."""

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """``(obs, rewards, dones, infos)`` of the turn started longest ago."""

    def close(self) -> None: ...


def whole(num_envs: int) -> list[slice]:
    """The turns of an env that steps all its environments at once."""
    return [slice(0, num_envs)]


def split_evenly(total: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive (start, stop) ranges covering range(total), sizes differing by at most one."""
    bounds = np.linspace(0, total, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
