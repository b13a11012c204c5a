"""The DeepMind Atari wrappers as OpenAI Baselines chains them (docs/spec/protocol.md, section 1), in gymnasium.

One class per Baselines wrapper (``baselines/common/atari_wrappers.py``), innermost first:
ALE with one emulator frame per step (the protocol's sticky actions), gym's v4 time limit,
NoopReset(30), MaxAndSkip(4), [evaluation: TimeLimit(max_eplen)], Monitor, EpisodicLife,
FireReset, WarpFrame, ClipReward. ``chain.make_atari_env`` assembles them; by default the
innermost four run fused in ``emulator.AtariEmulator`` (the same frames, faster). Frame
stacking happens across the vector environment (``frame_stack.FrameStacker``).
"""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from fl_saliency.envs.monitor import EpisodeTally
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.envs.games import rom_id
from fl_saliency.envs.protocol import Protocol, protocol_of

NOOP, FIRE = 0, 1
FRAME_SIZE = 84


def make_ale(game: str, protocol: Protocol | None = None):
    """One bare ALE emulator stepping one frame per step with the protocol's sticky actions and action
    set (default: v4, gym's NoFrameskip-v4 settings). v5's frame cap is the ALE's own, as in ale-py;
    v4's time limit is gym's (``V4TimeLimit`` adds it)."""
    from ale_py.env import AtariEnv

    protocol = protocol or protocol_of(game)
    return AtariEnv(rom_id(game), frameskip=1, repeat_action_probability=protocol.repeat_action_probability,
                    full_action_space=protocol.full_action_space,
                    max_num_frames_per_episode=None if protocol.version == "v4" else protocol.max_episode_frames)


class V4TimeLimit(TimeLimit):
    """gym's TimeLimit that ``gym.make("<Game>NoFrameskip-v4")`` puts around the emulator
    (``v4_frame_limit`` emulator frames, no-op frames of the reset included)."""

    def __init__(self, env: gym.Env, frames: int):
        super().__init__(env, max_episode_steps=frames)


def check_breakout_infinite(game: str) -> None:
    if game != "Breakout":
        raise FlSaliencyError(f"--breakout-infinite patches Breakout's score; the game here is {game}")


class NoopReset(gym.Wrapper):
    """Baselines' NoopResetEnv: after a reset, 1..noop_max NOOP frames drawn from the env's seeded
    RNG (a game that ends among them is reset again)."""

    def __init__(self, env: gym.Env, noop_max: int = 30):
        super().__init__(env)
        self.noop_max = noop_max

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        for _ in range(int(self.unwrapped.np_random.integers(1, self.noop_max + 1))):
            obs, _, terminated, truncated, info = self.env.step(NOOP)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def max_and_skip(frame, skip: int, buffer: np.ndarray):
    """Baselines' MaxAndSkip loop over ``frame(keep) -> (reward, terminated, truncated, info)``,
    which plays one emulator frame and copies its screen into ``keep`` unless that is None
    (only the last two frames are kept): (max of the two, summed reward, terminated, truncated, info)."""
    total_reward = 0.0
    for i in range(skip):
        slot = i - (skip - 2)
        reward, terminated, truncated, info = frame(buffer[slot] if slot >= 0 else None)
        total_reward += reward
        if terminated or truncated:
            break
    return buffer.max(axis=0), total_reward, terminated, truncated, info


class MaxAndSkip(gym.Wrapper):
    """Baselines' MaxAndSkipEnv: repeat the action ``skip`` frames, sum the rewards, observe the
    max of the last two frames.

    As in Baselines, the two-frame buffer persists across steps: a step cut short by the end
    of a game returns a max over frames partly from the previous step (that observation is
    never acted on: the vector env resets).
    """

    def __init__(self, env: gym.Env, skip: int = 4):
        super().__init__(env)
        self.skip = skip
        self.buffer = np.zeros((2, *env.observation_space.shape), env.observation_space.dtype)

    def step(self, action):
        def frame(keep):
            obs, reward, terminated, truncated, info = self.env.step(action)
            if keep is not None:
                keep[...] = obs
            return reward, terminated, truncated, info

        return max_and_skip(frame, self.skip, self.buffer)


class Monitor(gym.Wrapper):
    """Baselines' Monitor without its CSV (``logger.MonitorCSV`` writes that): the full game's
    unclipped score and length, ``info["episode"] = {r, l, t}`` when a game ends."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.tally = EpisodeTally(1)

    def reset(self, **kwargs):
        self.tally.restart()
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.tally.add(reward)
        if terminated or truncated:
            info["episode"] = self.tally.finish(np.ones(1, bool))[0]
        return obs, reward, terminated, truncated, info


class EpisodicLife(gym.Wrapper):
    """Baselines' EpisodicLifeEnv: a lost life ends the agent's episode; the emulator is reset
    only on a real game over. One difference: a game that ends on the hidden NOOP step after a
    lost life (a time limit) is reset and its Monitor episode passed on (Baselines' Monitor
    would raise there)."""

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
    """Baselines' FireResetEnv: after every reset (life losses included, via EpisodicLife) take
    FIRE, then action 2. One difference: a game that ends on these steps (a time limit) is reset
    and its Monitor episode reported with the reset's info."""

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
    """Baselines' WarpFrame: observation -> 84x84 grayscale."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE), np.uint8)

    def observation(self, observation):
        return warp_frame(observation)


class ScreenCapture(gym.Wrapper):
    """``info["rgb"]``: the emulator's current 210x160 RGB screen, what Baselines' VecEnv
    ``get_images()`` shows (here per step, as an info, so that it crosses process boundaries)."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        info["rgb"] = self.unwrapped.ale.getScreenRGB()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["rgb"] = self.unwrapped.ale.getScreenRGB()
        return obs, reward, terminated, truncated, info


class ClipReward(gym.RewardWrapper):
    """Baselines' ClipRewardEnv: the reward's sign."""

    def reward(self, reward):
        return float(np.sign(reward))
