"""Frame stacking across a vector environment, as Baselines' VecFrameStack does it."""

from __future__ import annotations

import numpy as np

from fl_saliency.envs.wrappers import FRAME_SIZE

STACK = 4


class FrameStacker:
    """Baselines' VecFrameStack(4): the last 4 frames per env, oldest first; a done zeroes that
    env's stack before the new frame goes in. The one difference: channels first, (N, 4, 84, 84)."""

    def __init__(self, num_envs: int):
        self.stack = np.zeros((num_envs, STACK, FRAME_SIZE, FRAME_SIZE), np.uint8)

    def reset(self, frames: np.ndarray) -> np.ndarray:
        self.stack[:] = 0
        self.stack[:, -1] = frames
        return self.stack.copy()

    def push(self, frames: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.stack[:, :-1] = self.stack[:, 1:]
        self.stack[dones] = 0
        self.stack[:, -1] = frames
        return self.stack.copy()
