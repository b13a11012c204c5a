"""The paper's BreakoutInfinite (Table 5): Breakout whose bricks keep respawning, by a RAM patch of the score."""

from __future__ import annotations

import gymnasium as gym


def breakout_score(ale) -> int:
    """Breakout's score as ALE reads it: BCD ones and tens in RAM 77, hundreds in the low nibble of RAM 76."""
    ones_tens, hundreds = int(ale.getRAM()[77]), int(ale.getRAM()[76])
    return (ones_tens & 0x0F) + 10 * (ones_tens >> 4) + 100 * (hundreds & 0x0F)


def set_breakout_score(ale, score: int) -> None:
    ram = ale.getRAM()
    ale.setRAM(76, (int(ram[76]) & 0xF0) | (score // 100))
    ale.setRAM(77, ((score // 10 % 10) << 4) | (score % 10))


class BreakoutInfinite:
    """Applied after each emulator frame: when the score reaches 864 it is rewritten to 432 in
    RAM, so the bricks keep respawning. ALE sees the rewrite as -432 on the next frame; that is
    added back, so rewards keep counting the true points earned."""

    PATCH_AT, PATCH_BY = 864, 432

    def __init__(self):
        self.owed = 0

    def reset(self) -> None:
        self.owed = 0

    def after_frame(self, ale, reward: float) -> float:
        """The frame's true reward; patches the score in RAM when it reached PATCH_AT."""
        reward, self.owed = reward + self.owed, 0
        score = breakout_score(ale)
        if score >= self.PATCH_AT:
            set_breakout_score(ale, score - self.PATCH_BY)
            self.owed = self.PATCH_BY
        return reward


class BreakoutInfiniteFrames(gym.Wrapper):
    """``BreakoutInfinite`` on a one-frame-per-step ALE env (the plain wrapper chain; the paper's
    original patches the emulator the same way, frame by frame)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.patch = BreakoutInfinite()

    def reset(self, **kwargs):
        self.patch.reset()
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, self.patch.after_frame(self.unwrapped.ale, reward), terminated, truncated, info
