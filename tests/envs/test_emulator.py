"""The fused emulator stepping (fl_saliency/envs/emulator.py) against the plain wrappers it replaces:
MaxAndSkip(NoopReset(V4TimeLimit([BreakoutInfinite](ALE)))), stepped side by side."""

from __future__ import annotations

import numpy as np
import pytest

from fl_saliency.envs.breakout_infinite import breakout_score, set_breakout_score
from fl_saliency.envs.chain import make_emulator
from fl_saliency.envs.emulator import AtariEmulator
from fl_saliency.envs.wrappers import MaxAndSkip, NoopReset, V4TimeLimit


def _time_limit(env) -> V4TimeLimit:
    while not isinstance(env, V4TimeLimit):
        env = env.env
    return env


def _assert_same_steps(fused, plain, actions, seed, start_score=None):
    """Same reset and step results (the score set to ``start_score`` in both after the reset); the
    rewards' sum and the game ends seen."""
    f_obs, _ = fused.reset(seed=seed)
    p_obs, _ = plain.reset(seed=seed)
    np.testing.assert_array_equal(f_obs, p_obs)
    if start_score is not None:
        set_breakout_score(fused.unwrapped.ale, start_score)
        set_breakout_score(plain.unwrapped.ale, start_score)
    total, ends = 0.0, 0
    for step, action in enumerate(actions):
        f_obs, f_reward, f_term, f_trunc, _ = fused.step(int(action))
        p_obs, p_reward, p_term, p_trunc, _ = plain.step(int(action))
        assert (f_reward, f_term, f_trunc) == (p_reward, p_term, p_trunc), f"step {step}"
        np.testing.assert_array_equal(f_obs, p_obs, err_msg=f"step {step}")
        total += f_reward
        if f_term or f_trunc:
            ends += 1
            np.testing.assert_array_equal(fused.reset()[0], plain.reset()[0])
    return total, ends


@pytest.mark.parametrize("game, n_actions, seed", [("Breakout", 4, 0), ("MsPacman", 9, 1), ("SpaceInvaders", 6, 2)])
def test_fused_emulator_steps_as_the_plain_wrappers(game, n_actions, seed):
    fused, plain = make_emulator(game, fused=True), make_emulator(game, fused=False)
    assert isinstance(fused, AtariEmulator) and isinstance(plain, MaxAndSkip) and isinstance(plain.env, NoopReset)
    actions = np.random.default_rng(seed).integers(0, n_actions, size=400)
    total, ends = _assert_same_steps(fused, plain, actions, seed)
    assert total > 0 and ends >= (0 if game == "MsPacman" else 1)  # points and game ends were compared
    fused.close()
    plain.close()


def test_fused_and_plain_truncate_at_the_v4_frame_limit_alike():
    fused, plain = make_emulator("Breakout", fused=True), make_emulator("Breakout", fused=False)
    fused.reset(seed=3)
    plain.reset(seed=3)
    # 30 frames before the limit: the 8th 4-frame step crosses it, in both.
    fused.frames = fused.frame_limit - 30
    _time_limit(plain)._elapsed_steps = fused.frame_limit - 30
    truncated_at = []
    for step in range(1, 12):
        f = fused.step(0)
        p = plain.step(0)
        assert f[1:4] == p[1:4]
        np.testing.assert_array_equal(f[0], p[0])
        if f[3]:
            truncated_at.append(step)
            np.testing.assert_array_equal(fused.reset()[0], plain.reset()[0])
    assert truncated_at == [8]


def test_fused_and_plain_breakout_infinite_patch_the_score_alike():
    fused = make_emulator("Breakout", breakout_infinite=True, fused=True)
    plain = make_emulator("Breakout", breakout_infinite=True, fused=False)
    # 863 points (seen as a reward of 863 on the next frame): the first brick hit reaches 864, which
    # both rewrite to 432 in RAM, the rewrite's -432 added back.
    actions = np.random.default_rng(0).integers(0, 4, size=43)  # the 43rd step hits a brick
    total, _ = _assert_same_steps(fused, plain, actions, seed=5, start_score=863)
    assert total == 864
    assert breakout_score(fused.unwrapped.ale) == breakout_score(plain.unwrapped.ale) == 432
