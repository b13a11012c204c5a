"""The ``baselines`` backend (fl_saliency/envs/baselines.py): reproducible, env ``rank`` seeded ``seed + rank``."""

from __future__ import annotations

import numpy as np
import pytest

from baselines_reference import expected_noops
from fl_saliency.envs import make_vec_env


def test_same_seed_and_actions_reproduce_the_trajectory():
    actions = np.random.default_rng(5).integers(0, 4, size=(150, 1))
    runs = []
    for _ in range(2):
        vec = make_vec_env("Breakout", 1, 11, backend="baselines", asynchronous=False)
        trajectory = [vec.reset()]
        for a in actions:
            obs, rewards, dones, _ = vec.step(a)
            trajectory.append((obs, rewards, dones, vec.block.envs.envs[0].unwrapped.ale.getEpisodeFrameNumber()))
        runs.append(trajectory)
        vec.close()
    assert np.array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1:], runs[1][1:]):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2]) and a[3] == b[3]


def _trajectory(seed, num_envs, rank, actions):
    vec = make_vec_env("Breakout", num_envs, seed, backend="baselines", asynchronous=False)
    frames = [vec.reset()[rank]]
    ale = vec.block.envs.envs[rank].unwrapped.ale
    counters = [ale.getEpisodeFrameNumber()]
    for a in actions:
        frames.append(vec.step(np.full(num_envs, a))[0][rank])
        counters.append(ale.getEpisodeFrameNumber())
    vec.close()
    return np.stack(frames), counters


@pytest.mark.slow
def test_env_rank_is_seeded_seed_plus_rank():
    actions = np.random.default_rng(7).integers(0, 4, size=120)
    rank1, counters1 = _trajectory(30, 2, 1, actions)
    seed31, counters31 = _trajectory(30 + 1, 1, 0, actions)
    assert counters1[0] == expected_noops("Breakout", 31) + 8
    assert counters1 == counters31 and np.array_equal(rank1, seed31)
    same, counters_same = _trajectory(31, 1, 0, actions)
    assert counters_same == counters31 and np.array_equal(same, seed31)
    # Seeds 30 and 31 start with different no-op counts; the games differ.
    assert expected_noops("Breakout", 30) != expected_noops("Breakout", 31)
    rank0, counters0 = _trajectory(30, 2, 0, actions)
    assert counters0 != counters1 and not np.array_equal(rank0, rank1)
