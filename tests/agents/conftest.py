"""Agents made by the real tools, once per session: Stable-Baselines3 PPO and DQN trained for a few
hundred steps on Breakout with SB3's own Atari wrappers and frame stacking, saved with
``model.save()``, and observations from the same environment chain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

ENV_ID = "BreakoutNoFrameskip-v4"


@pytest.fixture(scope="session")
def sb3():
    return pytest.importorskip("stable_baselines3")


@pytest.fixture(scope="session")
def sb3_env(sb3):
    """Two Breakout games through SB3's make_atari_env (its AtariWrapper) and VecFrameStack(n_stack=4)."""
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    env = VecFrameStack(make_atari_env(ENV_ID, n_envs=2, seed=0), n_stack=4)
    yield env
    env.close()


@pytest.fixture(scope="session")
def sb3_observations(sb3_env):
    """8 stacks (8, 84, 84, 4) uint8, channels last as VecFrameStack gives them, of a game in play."""
    env = sb3_env
    rng = np.random.default_rng(0)
    obs, stacks = env.reset(), []
    for step in range(60):
        obs, *_ = env.step(rng.integers(0, 4, size=2))
        if step >= 56:
            stacks.append(obs)
    stacks = np.concatenate(stacks)
    assert stacks.shape == (8, 84, 84, 4) and stacks.std() > 0
    return stacks


@pytest.fixture(scope="session")
def sb3_models(sb3, sb3_env, tmp_path_factory):
    """{"ppo": (model, zip path), "dqn": ...}: PPO for 256 steps, DQN for 300 (50 updates), on Breakout."""
    folder = tmp_path_factory.mktemp("sb3")
    env = sb3_env
    ppo = sb3.PPO("CnnPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    ppo.learn(256)
    dqn = sb3.DQN("CnnPolicy", env, buffer_size=1000, learning_starts=100, train_freq=4, seed=0, device="cpu")
    dqn.learn(300)
    models = {}
    for name, model in (("ppo", ppo), ("dqn", dqn)):
        model.save(folder / f"{name}.zip")
        models[name] = (model, folder / f"{name}.zip")
    return models


@pytest.fixture(scope="session")
def untrained_zips(sb3, sb3_env, tmp_path_factory):
    """{"ppo": path, "dqn": path}: SB3 models saved as built, for the tests that need no training."""
    folder = tmp_path_factory.mktemp("sb3_untrained")
    paths = {"ppo": folder / "ppo.zip", "dqn": folder / "dqn.zip"}
    sb3.PPO("CnnPolicy", sb3_env, seed=2, device="cpu").save(paths["ppo"])
    sb3.DQN("CnnPolicy", sb3_env, buffer_size=100, seed=2, device="cpu").save(paths["dqn"])
    return paths


@pytest.fixture(scope="session")
def sb3_frames(sb3_observations):
    """The same stacks as the agents take them: (8, 4, 84, 84), transposed by hand."""
    return torch.from_numpy(np.ascontiguousarray(sb3_observations.transpose(0, 3, 1, 2)))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains Stable-Baselines3 agents (minutes on a busy 2-core machine)")
