"""Stable-Baselines3's PPO on our environment chain, with the Baselines Atari settings (for the benchmarks)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from fl_saliency.ppo.algorithm import PPOConfig
from fl_saliency.envs.chain import make_atari_env


class ChannelLast(gym.ObservationWrapper):
    """(84, 84) -> (84, 84, 1): the image layout SB3's CnnPolicy and VecFrameStack expect."""

    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (84, 84, 1), np.uint8)

    def observation(self, obs):
        return obs[..., None]


def make_sb3_ppo(env_name: str, config: PPOConfig, seed: int, linear_lr: bool = False):
    """SB3's PPO (CnnPolicy) over ``config.num_envs`` subprocess environments of our chain, frame-stacked."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack

    env = VecFrameStack(SubprocVecEnv([lambda: ChannelLast(make_atari_env(env_name))] * config.num_envs), 4)
    env.seed(seed)
    lr = (lambda fraction: config.lr * fraction) if linear_lr else config.lr
    return PPO("CnnPolicy", env, n_steps=config.nsteps, batch_size=config.minibatch_size, n_epochs=config.noptepochs,
               learning_rate=lr, clip_range=config.cliprange, ent_coef=config.ent_coef, vf_coef=config.vf_coef,
               max_grad_norm=config.max_grad_norm, gamma=config.gamma, gae_lambda=config.lam, device="cpu", seed=seed,
               verbose=0, policy_kwargs={"optimizer_kwargs": {"eps": config.adam_eps}})
