"""The ``baselines`` backend: the exact Baselines chain per environment, stacked as VecFrameStack does."""

from __future__ import annotations

import numpy as np

from fl_saliency.envs.block import EnvBlock
from fl_saliency.envs.frame_stack import FrameStacker
from fl_saliency.envs.pool import WorkerPool, env_workers
from fl_saliency.envs.vec_env import whole
from fl_saliency.envs.games import num_actions
from fl_saliency.envs.protocol import Protocol, protocol_of


class BaselinesVecEnv:
    """A ``VecEnv`` of the chain of ``chain.make_atari_env``: in ``workers`` subprocesses that each
    step a block of consecutive ranks (``pool``), or in-process (``block``, with
    ``asynchronous=False`` or one environment)."""

    def __init__(self, env_name: str, num_envs: int, seed: int, max_eplen: int | None = None,
                 keep_rgb: bool = False, asynchronous: bool = True, breakout_infinite: bool = False,
                 workers: int | None = None, protocol: Protocol | None = None):
        protocol = protocol or protocol_of(env_name)
        self.num_envs = num_envs
        self.n_actions = num_actions(env_name, protocol.full_action_space)
        self.turns = whole(num_envs)
        self.stacker = FrameStacker(num_envs)
        options = (max_eplen, keep_rgb, breakout_infinite, protocol)
        workers = env_workers(num_envs, workers) if asynchronous and num_envs > 1 else 0
        self.block = None if workers else EnvBlock(env_name, num_envs, seed, *options)
        self.pool = WorkerPool(env_name, num_envs, seed, workers, options) if workers else None

    def reset(self) -> np.ndarray:
        frames, self.reset_infos = self.block.reset() if self.block else self.pool.reset()
        return self.stacker.reset(frames)

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step; with a pool the environments run in their processes until ``step_wait``."""
        actions = np.asarray(actions)
        if self.block:
            self._pending = actions
        else:
            self.pool.step_async(actions)

    def step_wait(self):
        frames, rewards, dones, infos = self.block.step(self._pending) if self.block else self.pool.step_wait()
        return self.stacker.push(frames, dones), rewards, dones, infos

    def step(self, actions: np.ndarray):
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        if self.block:
            self.block.close()
        if self.pool:
            self.pool.close()
