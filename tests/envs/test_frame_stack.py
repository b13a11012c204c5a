"""Frame stacking across the vector env (fl_saliency/envs/frame_stack.py), as Baselines' VecFrameStack."""

from __future__ import annotations

import numpy as np

from baselines_reference import Rollout


def test_done_zeroes_only_that_envs_stack_then_it_refills():
    rollout = Rollout("Breakout", seed=2, num_envs=2)
    noop = np.zeros(2, int)
    while True:
        previous = rollout.obs.copy()
        obs, _, dones, _, _ = rollout.step(noop)
        assert rollout.steps < 1000
        if dones.sum() == 1:
            break
    done, other = int(np.argmax(dones)), int(np.argmin(dones))
    assert not obs[done, :3].any()
    assert np.array_equal(obs[done, 3], rollout.refs[done].frame) and obs[done, 3].any()
    assert np.array_equal(obs[other, :3], previous[other, 1:])
    assert np.array_equal(obs[other, 3], rollout.refs[other].frame)
    new_frames = [obs[done, 3]]
    for k in range(1, 4):
        obs, _, dones, _, _ = rollout.step(noop)
        assert not dones[done]
        new_frames.append(obs[done, 3])
        assert not obs[done, : 3 - k].any()  # the oldest slots are still zero
        assert np.array_equal(obs[done, 3 - k:], np.stack(new_frames))  # oldest first, slot -1 newest
    rollout.close()
