"""An optimisation: the innermost four wrappers of the chain fused into one emulator stepper.

``AtariEmulator`` gives frame for frame what MaxAndSkip(NoopReset([V4TimeLimit](ALE))) gives
(tests/envs/test_emulator.py steps both side by side), but each frame is one call into the ALE:
no wrapper calls per frame, and the screen is read only for the two frames a step keeps (an
agent step of the whole chain costs about 12% less).
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

from fl_saliency.envs.breakout_infinite import BreakoutInfinite
from fl_saliency.envs.wrappers import NOOP, check_breakout_infinite, make_ale, max_and_skip
from fl_saliency.envs.protocol import Protocol, protocol_of


class AtariEmulator(gym.Wrapper):
    """The ALE of the protocol (default: gym's <Game>NoFrameskip-v4) under Baselines' NoopReset(30)
    and MaxAndSkip(4), with the paper's BreakoutInfinite patch after each frame if asked. ``frames``
    counts the emulator frames since the game's reset, no-ops included (what gym's v4 TimeLimit
    and the ALE's own v5 frame cap count)."""

    def __init__(self, game: str, breakout_infinite: bool = False, noop_max: int = 30, skip: int = 4,
                 protocol: Protocol | None = None):
        if breakout_infinite:
            check_breakout_infinite(game)
        protocol = protocol or protocol_of(game)
        super().__init__(make_ale(game, protocol))
        self.ale = self.env.ale
        self.action_set = self.ale.getLegalActionSet() if protocol.full_action_space else self.ale.getMinimalActionSet()
        self.noop_max = noop_max
        self.skip = skip
        self.buffer = np.zeros((2, *self.env.observation_space.shape), self.env.observation_space.dtype)
        self.frame_limit = protocol.max_episode_frames
        self.frames = 0
        self.score_patch = BreakoutInfinite() if breakout_infinite else None

    def _reset_game(self, **kwargs):
        self.frames = 0
        if self.score_patch:
            self.score_patch.reset()
        return self.env.reset(**kwargs)

    def reset(self, **kwargs):
        """A new game, then 1..noop_max NOOP frames drawn from the env's seeded RNG (NoopReset)."""
        _, info = self._reset_game(**kwargs)
        for _ in range(int(self.env.np_random.integers(1, self.noop_max + 1))):
            _, terminated, truncated, _ = self._frame(NOOP, None)
            if terminated or truncated:
                _, info = self._reset_game(**kwargs)
        return self.ale.getScreenRGB(), info

    def step(self, action):
        return max_and_skip(functools.partial(self._frame, action), self.skip, self.buffer)

    def _frame(self, action, keep: np.ndarray | None):
        """One emulator frame; its screen copied into ``keep`` when the step keeps it."""
        reward = self.ale.act(self.action_set[action])
        self.frames += 1
        if keep is not None:
            self.ale.getScreenRGB(keep)
        if self.score_patch:
            reward = self.score_patch.after_frame(self.ale, reward)
        terminated = self.ale.game_over(with_truncation=False)
        truncated = self.ale.game_truncated() or self.frames >= self.frame_limit
        return reward, terminated, truncated, {}
