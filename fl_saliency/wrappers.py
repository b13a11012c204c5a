"""The DeepMind Atari wrappers as OpenAI Baselines chains them (protocol.md section 1), in gymnasium.

Innermost first: ALE with one emulator frame per step and no sticky actions, the v4 time
limit, NoopReset(30), MaxAndSkip(4) (these four as one ``AtariEmulator``), [evaluation:
TimeLimit(max_eplen)], Monitor, EpisodicLife, FireReset, WarpFrame, ClipReward. Frame stacking
happens across the vector environment (``FrameStacker``), as Baselines' VecFrameStack does.
"""

from __future__ import annotations

import time

import cv2
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from fl_saliency.errors import FlSaliencyError
from fl_saliency.games import parse_game, rom_id

NOOP, FIRE = 0, 1
FRAME_SIZE = 84
STACK = 4


def v4_frame_limit(game: str) -> int:
    """gym's NoFrameskip-v4 registration: max_episode_steps = frameskip x 100,000 (SpaceInvaders' frameskip is 3)."""
    return 300_000 if game == "SpaceInvaders" else 400_000


class MaxAndSkip(gym.Wrapper):
    """Repeat the action ``skip`` frames, sum the rewards, observe the max of the last two frames.

    As in Baselines, the two-frame buffer persists across steps: a step cut short by the end
    of a game returns a max over frames partly from the previous step (that observation is
    never acted on: the vector env resets).
    """

    def __init__(self, env: gym.Env, skip: int = 4):
        super().__init__(env)
        self.skip = skip
        self.buffer = np.zeros((2, *env.observation_space.shape), env.observation_space.dtype)

    def step(self, action):
        total_reward = 0.0
        for i in range(self.skip):
            slot = i - (self.skip - 2)
            reward, terminated, truncated, info = self._frame(action, self.buffer[slot] if slot >= 0 else None)
            total_reward += reward
            if terminated or truncated:
                break
        return self.buffer.max(axis=0), total_reward, terminated, truncated, info

    def _frame(self, action, keep: np.ndarray | None):
        """One inner step; its observation copied into ``keep`` when the step keeps it."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if keep is not None:
            keep[...] = obs
        return reward, terminated, truncated, info


def make_ale(game: str):
    """One bare ALE emulator with gym's NoFrameskip-v4 settings: one frame per step, no sticky
    actions, the minimal action set (no time limit here; ``AtariEmulator`` counts it)."""
    from ale_py.env import AtariEnv

    return AtariEnv(rom_id(game), frameskip=1, repeat_action_probability=0.0, full_action_space=False)


class AtariEmulator(MaxAndSkip):
    """gym's <Game>NoFrameskip-v4 under Baselines' NoopReset(30) and MaxAndSkip(4).

    Frame for frame what MaxAndSkip(NoopReset(TimeLimit(AtariEnv))) gives (tests/test_envs.py
    replays a bare emulator beside it), but each frame is one call into the ALE: no wrapper calls
    per frame, and the screen is read only for the two frames a step keeps (an agent step of the
    whole chain costs ~12% less).
    """

    def __init__(self, game: str, breakout_infinite: bool = False, noop_max: int = 30, skip: int = 4):
        if breakout_infinite and game != "Breakout":
            raise FlSaliencyError(f"--breakout-infinite patches Breakout's score; the game here is {game}")
        super().__init__(make_ale(game), skip)
        self.ale = self.env.ale
        self.action_set = self.ale.getMinimalActionSet()
        self.noop_max = noop_max
        self.frame_limit = v4_frame_limit(game)
        self.frames = 0  # since the game's reset, no-ops included: what gym's v4 TimeLimit counts
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

    def _frame(self, action, keep: np.ndarray | None):
        reward = self.ale.act(self.action_set[action])
        self.frames += 1
        if keep is not None:
            self.ale.getScreenRGB(keep)
        if self.score_patch:
            reward = self.score_patch.after_frame(self.ale, reward)
        terminated = self.ale.game_over(with_truncation=False)
        truncated = self.ale.game_truncated() or self.frames >= self.frame_limit
        return reward, terminated, truncated, {}


class Monitor(gym.Wrapper):
    """Full-game, unclipped score and length; ``info["episode"] = {r, l, t}`` when a game ends."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.t_start = time.time()
        self.episode_return = 0.0
        self.episode_length = 0

    def reset(self, **kwargs):
        self.episode_return = 0.0
        self.episode_length = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.episode_return += reward
        self.episode_length += 1
        if terminated or truncated:
            info["episode"] = {
                "r": round(self.episode_return, 6),
                "l": self.episode_length,
                "t": round(time.time() - self.t_start, 6),
            }
        return obs, reward, terminated, truncated, info


class EpisodicLife(gym.Wrapper):
    """A lost life ends the agent's episode; the emulator is reset only on a real game over."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.real_done = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.real_done = terminated or truncated
        lives = self.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.real_done:
            obs, info = self.env.reset(**kwargs)
        else:
            # Baselines steps a NOOP to leave the life-loss state; its reward reaches only the Monitor.
            obs, _, terminated, truncated, info = self.env.step(NOOP)
            if terminated or truncated:
                # The game ended on this hidden step (a time limit); Baselines' Monitor would raise here.
                obs, info = _reset_keeping_episode(self.env, info, **kwargs)
        self.lives = self.unwrapped.ale.lives()
        return obs, info


def _reset_keeping_episode(env: gym.Env, info: dict, **kwargs):
    """Reset after a game ended on a step the agent never sees, passing its Monitor episode on."""
    episode = info.get("episode")
    obs, info = env.reset(**kwargs)
    if episode is not None:
        info["episode"] = episode
    return obs, info


class FireReset(gym.Wrapper):
    """After every reset (life losses included, via EpisodicLife) take FIRE, then action 2."""

    def reset(self, **kwargs):
        _, info = self.env.reset(**kwargs)
        episode = info.get("episode")  # a game that ended inside the reset below, reported with it
        for action in (FIRE, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                episode = info.get("episode", episode)
                obs, info = self.env.reset(**kwargs)
        if episode is not None:
            info["episode"] = episode
        return obs, info


def has_fire_reset(env: gym.Env) -> bool:
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) >= 3 and meanings[FIRE] == "FIRE"


def warp_frame(rgb: np.ndarray) -> np.ndarray:
    """RGB (210,160,3) -> grayscale 84x84 uint8 with area interpolation, as Baselines' WarpFrame."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)


class WarpFrame(gym.ObservationWrapper):
    """Observation -> 84x84 grayscale."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE), np.uint8)

    def observation(self, observation):
        return warp_frame(observation)


class ScreenCapture(gym.Wrapper):
    """``info["rgb"]``: the emulator's current 210x160 RGB screen, as Baselines' ``get_images()`` shows it."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        info["rgb"] = self.unwrapped.ale.getScreenRGB()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["rgb"] = self.unwrapped.ale.getScreenRGB()
        return obs, reward, terminated, truncated, info


class ClipReward(gym.RewardWrapper):
    def reward(self, reward):
        return float(np.sign(reward))


def breakout_score(ale) -> int:
    """Breakout's score as ALE reads it: BCD ones and tens in RAM 77, hundreds in the low nibble of RAM 76."""
    ones_tens, hundreds = int(ale.getRAM()[77]), int(ale.getRAM()[76])
    return (ones_tens & 0x0F) + 10 * (ones_tens >> 4) + 100 * (hundreds & 0x0F)


def set_breakout_score(ale, score: int) -> None:
    ram = ale.getRAM()
    ale.setRAM(76, (int(ram[76]) & 0xF0) | (score // 100))
    ale.setRAM(77, ((score // 10 % 10) << 4) | (score % 10))


class BreakoutInfinite:
    """The paper's BreakoutInfinite (Table 5), applied after each emulator frame: when the score
    reaches 864 it is rewritten to 432 in RAM, so the bricks keep respawning. ALE sees the rewrite
    as -432 on the next frame; that is added back, so rewards keep counting the true points earned."""

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


def make_atari_env(env_name: str, max_eplen: int | None = None, keep_rgb: bool = False,
                   breakout_infinite: bool = False) -> gym.Env:
    """The full Baselines chain for one environment (without frame stacking)."""
    env = AtariEmulator(parse_game(env_name), breakout_infinite)
    if max_eplen is not None:
        env = TimeLimit(env, max_episode_steps=max_eplen)
    env = EpisodicLife(Monitor(env))
    if has_fire_reset(env):
        env = FireReset(env)
    env = ClipReward(WarpFrame(env))
    return ScreenCapture(env) if keep_rgb else env


class FrameStacker:
    """Baselines' VecFrameStack: the last 4 frames per env, oldest first; a done zeroes that env's stack."""

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
