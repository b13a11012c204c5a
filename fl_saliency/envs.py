"""Vectorised Atari environments with Baselines' VecEnv semantics, behind one interface.

``make_vec_env(env_name, num_envs, seed, backend=...)`` returns an object with

- ``reset() -> obs``: uint8 (N, 4, 84, 84), oldest frame first; environment ``rank`` is seeded
  ``seed + rank``;
- ``step(actions) -> (obs, rewards, dones, infos)``: ``rewards`` float32 (N,) clipped to their sign,
  ``dones`` bool (N,) the agent's done (a lost life included); on a done the returned
  observation already starts the next episode, its stack zeroed; ``infos[i]["episode"] =
  {"r", "l", "t"}`` when environment i finished a full game (Monitor: all lives, unclipped
  score, time since the environment started); with ``keep_rgb``, ``infos[i]["rgb"]`` is the
  emulator's current 210x160 RGB screen (what Baselines' ``get_images()`` shows);
- ``step_async(actions)`` then ``step_wait()``: the same step in two calls, so that the caller can
  work while the environments run (a no-op split where they run in-process);
- ``num_envs``, ``n_actions``, ``close()``.

Backends: ``baselines`` (default) runs the exact Python wrapper chain of wrappers.py, one
process per environment; ``ale-vector`` runs ale-py's C++ vector environment completed in
Python (ale_vector.py; its remaining differences are listed in the README).
"""

from __future__ import annotations

import functools
import signal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from fl_saliency.errors import FlSaliencyError
from fl_saliency.games import num_actions, parse_game
from fl_saliency.wrappers import FrameStacker, make_atari_env

BACKENDS = ("baselines", "ale-vector")


def _episodes(info: dict) -> tuple[dict | None, np.ndarray | None]:
    episodes = info.get("episode")
    return (episodes, info["_episode"]) if episodes is not None else (None, None)


def _unbatch_infos(info: dict, num_envs: int) -> list[dict]:
    """Per-env dicts of what gymnasium batched: the Monitor episode that ended on the step (in
    ``final_info`` under SAME_STEP autoreset) or, failing that, one that ended inside the reset that
    followed (a time limit hit on a hidden FIRE/NOOP step); and the RGB screens if kept."""
    per_env: list[dict] = [{} for _ in range(num_envs)]
    sources = [_episodes(info)]
    if "final_info" in info:
        final, final_mask = _episodes(info["final_info"])
        if final is not None:
            sources.insert(0, (final, final_mask & info["_final_info"]))
    for episodes, mask in sources:
        if episodes is None:
            continue
        for i in np.flatnonzero(mask):
            per_env[i].setdefault("episode", {"r": float(episodes["r"][i]), "l": int(episodes["l"][i]),
                                              "t": float(episodes["t"][i])})
    if "rgb" in info:
        for i in range(num_envs):
            per_env[i]["rgb"] = info["rgb"][i]
    return per_env


def _make_in_worker(*args) -> gym.Env:
    # Ctrl-C is the training loop's to handle (checkpoint, then stop); workers must outlive it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return make_atari_env(*args)


class BaselinesVecEnv:
    """The exact Baselines chain per environment, stepped in subprocesses (or in-process)."""

    def __init__(self, env_name: str, num_envs: int, seed: int, max_eplen: int | None = None,
                 keep_rgb: bool = False, asynchronous: bool = True, breakout_infinite: bool = False):
        self.num_envs = num_envs
        self.n_actions = num_actions(env_name)
        self.seed = seed
        if asynchronous and num_envs > 1:
            make = functools.partial(_make_in_worker, env_name, max_eplen, keep_rgb, breakout_infinite)
            self.envs: gym.vector.VectorEnv = AsyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
        else:
            make = functools.partial(make_atari_env, env_name, max_eplen, keep_rgb, breakout_infinite)
            self.envs = SyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
        self.stacker = FrameStacker(num_envs)

    def reset(self) -> np.ndarray:
        frames, info = self.envs.reset(seed=self.seed)
        self.reset_infos = _unbatch_infos(info, self.num_envs)
        return self.stacker.reset(frames)

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step; the environments run in their processes until ``step_wait``."""
        if isinstance(self.envs, AsyncVectorEnv):
            self.envs.step_async(np.asarray(actions))
        else:
            self._pending = np.asarray(actions)

    def step_wait(self):
        if isinstance(self.envs, AsyncVectorEnv):
            frames, rewards, terminated, truncated, info = self.envs.step_wait()
        else:
            frames, rewards, terminated, truncated, info = self.envs.step(self._pending)
        dones = terminated | truncated
        return self.stacker.push(frames, dones), rewards.astype(np.float32), dones, _unbatch_infos(info, self.num_envs)

    def step(self, actions: np.ndarray):
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        self.envs.close()


class EnvGroups:
    """``num_envs`` environments as vector envs that take turns: two halves of subprocess
    environments, so that the network can act for one half while the other steps (one group where
    stepping runs in-process). Env ``rank`` is seeded ``seed + rank`` whatever the split, so every
    environment plays the same games as unsplit. ``parts`` pairs each group's slice of the ranks
    with its vector env."""

    def __init__(self, env_name: str, num_envs: int, seed: int, backend: str = "baselines", **options):
        if backend == "baselines" and num_envs >= 4:
            half = (num_envs + 1) // 2
            bounds = [(0, half), (half, num_envs)]
        else:
            bounds = [(0, num_envs)]
        self.parts = [(slice(start, stop), make_vec_env(env_name, stop - start, seed + start, backend, **options))
                      for start, stop in bounds]
        self.num_envs = num_envs
        self.n_actions = self.parts[0][1].n_actions

    def reset(self) -> np.ndarray:
        obs = np.concatenate([env.reset() for _, env in self.parts])
        self.reset_infos = [info for _, env in self.parts for info in env.reset_infos]
        return obs

    def close(self) -> None:
        for _, env in self.parts:
            env.close()


def make_vec_env(env_name: str, num_envs: int, seed: int, backend: str = "baselines", max_eplen: int | None = None,
                 keep_rgb: bool = False, asynchronous: bool = True, breakout_infinite: bool = False):
    """A vector environment of ``num_envs`` copies of the game, env ``rank`` seeded ``seed + rank``."""
    parse_game(env_name)
    if num_envs < 1:
        raise FlSaliencyError(f"--num-env must be at least 1, got {num_envs}")
    if backend == "baselines":
        return BaselinesVecEnv(env_name, num_envs, seed, max_eplen, keep_rgb, asynchronous, breakout_infinite)
    if backend == "ale-vector":
        if keep_rgb or breakout_infinite:
            raise FlSaliencyError("the ale-vector backend gives no RGB screens and no BreakoutInfinite; "
                                  "use --env-backend baselines")
        from fl_saliency.ale_vector import AleVectorEnv

        return AleVectorEnv(env_name, num_envs, seed, max_eplen)
    raise FlSaliencyError(f"unknown env backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
