"""A block of consecutive environments of the Baselines chain, stepped one after another in one process."""

from __future__ import annotations

import functools

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from fl_saliency.envs.chain import make_atari_env
from fl_saliency.envs.protocol import Protocol


def _episodes(info: dict) -> tuple[dict | None, np.ndarray | None]:
    episodes = info.get("episode")
    return (episodes, info["_episode"]) if episodes is not None else (None, None)


def unbatch_infos(info: dict, num_envs: int) -> list[dict]:
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


class EnvBlock:
    """``num_envs`` chain environments seeded ``seed``, ``seed + 1``, ... in gymnasium's
    SyncVectorEnv (SAME_STEP autoreset); frames unstacked, infos per environment."""

    def __init__(self, env_name: str, num_envs: int, seed: int, max_eplen: int | None = None, keep_rgb: bool = False,
                 breakout_infinite: bool = False, protocol: Protocol | None = None):
        make = functools.partial(make_atari_env, env_name, max_eplen, keep_rgb, breakout_infinite, protocol=protocol)
        self.envs = SyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
        self.num_envs = num_envs
        self.seed = seed

    def reset(self) -> tuple[np.ndarray, list[dict]]:
        frames, info = self.envs.reset(seed=self.seed)
        return frames, unbatch_infos(info, self.num_envs)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        frames, rewards, terminated, truncated, info = self.envs.step(actions)
        return frames, rewards.astype(np.float32), terminated | truncated, unbatch_infos(info, self.num_envs)

    def close(self) -> None:
        self.envs.close()
