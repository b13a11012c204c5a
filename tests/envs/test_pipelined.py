"""Groups of environments stepped in turns (fl_saliency/envs/pipelined.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fl_saliency.envs import PipelinedVecEnv, make_pipelined_vec_env, make_vec_env


@pytest.mark.slow
def test_env_groups_play_the_same_games_as_one_vector_env():
    actions = np.random.default_rng(5).integers(0, 4, size=(150, 4))
    whole = make_vec_env("Breakout", 4, 21, backend="baselines")
    groups = make_pipelined_vec_env("Breakout", 4, 21, backend="baselines", workers=2)
    assert [(ranks.start, ranks.stop) for ranks in groups.turns] == [(0, 2), (2, 4)]
    np.testing.assert_array_equal(whole.reset(), groups.reset())
    for a in actions:
        obs, rewards, dones, infos = whole.step(a)
        for ranks in groups.turns:
            groups.step_async(a[ranks])
        for ranks in groups.turns:
            g_obs, g_rewards, g_dones, g_infos = groups.step_wait()
            np.testing.assert_array_equal(g_obs, obs[ranks])
            np.testing.assert_array_equal(g_rewards, rewards[ranks])
            np.testing.assert_array_equal(g_dones, dones[ranks])
            assert [("episode" in i) for i in g_infos] == [("episode" in i) for i in infos[ranks]]
    whole.close()
    groups.close()


@pytest.mark.slow
def test_groups_take_turns_in_order_and_wait_in_start_order():
    groups = [make_vec_env("Breakout", n, seed, backend="baselines", asynchronous=False)
              for n, seed in ((1, 40), (2, 41), (1, 43))]
    singles = [make_vec_env("Breakout", 4, 40, backend="baselines", asynchronous=False)]
    env = PipelinedVecEnv(groups)
    assert (env.num_envs, env.n_actions) == (4, 4)
    assert [(r.start, r.stop) for r in env.turns] == [(0, 1), (1, 3), (3, 4)]
    obs = env.reset()
    np.testing.assert_array_equal(obs, singles[0].reset())
    assert len(env.reset_infos) == 4
    rng = np.random.default_rng(1)
    for _ in range(30):
        actions = rng.integers(0, 4, size=4)
        whole_obs, whole_rewards, _, _ = singles[0].step(actions)
        for ranks in env.turns:  # all three groups stepping at once
            env.step_async(actions[ranks])
        for ranks in env.turns:
            g_obs, g_rewards, _, infos = env.step_wait()
            assert len(infos) == ranks.stop - ranks.start
            np.testing.assert_array_equal(g_obs, whole_obs[ranks])
            np.testing.assert_array_equal(g_rewards, whole_rewards[ranks])
    env.close()
    singles[0].close()


def test_pipelining_switched_off_is_one_turn_of_all_environments():
    env = make_pipelined_vec_env("Breakout", 4, 0, backend="baselines", workers=2, pipelined=False)
    assert [(r.start, r.stop) for r in env.turns] == [(0, 4)] and len(env.groups) == 1
    assert len(env.groups[0].pool.workers) == 2
    env.close()


def test_ale_vector_backend_behind_the_pipelined_interface():
    env = make_pipelined_vec_env("Breakout", 2, 0, backend="ale-vector")
    assert [(r.start, r.stop) for r in env.turns] == [(0, 2)]
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and env.reset_infos == [{}, {}]
    env.step_async(np.zeros(2, int))
    obs, rewards, dones, infos = env.step_wait()
    assert obs.shape == (2, 4, 84, 84) and rewards.dtype == np.float32 and len(infos) == 2
    env.close()
