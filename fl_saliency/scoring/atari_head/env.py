"""A gymnasium environment over one Atari-HEAD trial (the original's "streaming image env").

Observations are the trial's raw 210x160 RGB frames in order; actions are ignored. ``reset``
returns PNG 1, each step the next PNG, and the step that returns PNG N ends the episode.
``info`` carries the frame number and that frame's gaze samples. The agent-side
preprocessing on top of it is the training chain's own MaxAndSkip(4), WarpFrame and frame
stacking (no no-op or fire reset), so the network sees what it saw in training.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import gymnasium as gym
import numpy as np

from fl_saliency.envs.frame_stack import FrameStacker
from fl_saliency.envs.wrappers import MaxAndSkip, WarpFrame

FULL_ACTION_SET = 18


class TrialEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, frames: Callable[[], Iterable[np.ndarray]], gaze: list[np.ndarray] | None = None):
        """``frames`` opens a fresh stream of the trial's RGB frames (PNG 1..N) each time it is called."""
        self.open_frames = frames
        self.gaze = gaze
        self.observation_space = gym.spaces.Box(0, 255, (210, 160, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(FULL_ACTION_SET)
        self._stream: Iterator[np.ndarray] | None = None

    def _info(self) -> dict:
        info = {"frame": self.frame_number}
        if self.gaze is not None:
            info["gaze"] = self.gaze[self.frame_number - 1]
        return info

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._stream = iter(self.open_frames())
        self.frame_number = 1
        current = next(self._stream, None)
        if current is None:
            raise ValueError("the trial has no frames")
        self._next = next(self._stream, None)
        return current, self._info()

    def step(self, action):
        if self._next is None:
            raise RuntimeError("step() after the trial's last frame; call reset()")
        current, self._next = self._next, next(self._stream, None)
        self.frame_number += 1
        return current, 0.0, self._next is None, False, self._info()


def agent_observations(frames: Callable[[], Iterable[np.ndarray]]) -> Iterator[np.ndarray]:
    """The stacked uint8 observations (4, 84, 84) a network acts on over the trial: k = 0 .. K-1.

    The observation returned together with the end of the trial is not acted on, so not yielded.
    """
    env = WarpFrame(MaxAndSkip(TrialEnv(frames), skip=4))
    stacker = FrameStacker(1)
    frame, _ = env.reset()
    obs = stacker.reset(frame[None])
    while True:
        yield obs[0]
        frame, _, terminated, _, _ = env.step(0)
        if terminated:
            return
        obs = stacker.push(frame[None], np.zeros(1, bool))
