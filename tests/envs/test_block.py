"""Environments stepped in one process (fl_saliency/envs/block.py): gymnasium's batched infos, per environment."""

from __future__ import annotations

import numpy as np

from fl_saliency.envs.block import EnvBlock, unbatch_infos


def _episodes(mask, r, l):
    return {"episode": {"r": np.array(r, float), "l": np.array(l), "t": np.array([1.5] * len(r))},
            "_episode": np.array(mask)}


def test_unbatch_prefers_the_episode_that_ended_on_the_step_then_one_inside_the_reset():
    # env 0: a game ended on the step (final_info) and another inside the reset that followed: the first counts;
    # env 1: only inside the reset (a time limit on a hidden step); env 2: none.
    info = {**_episodes([True, True, False], [9, 4, 0], [90, 40, 0]),
            "final_info": _episodes([True, False, False], [7, 0, 0], [70, 0, 0]),
            "_final_info": np.array([True, False, False])}
    assert unbatch_infos(info, 3) == [{"episode": {"r": 7.0, "l": 70, "t": 1.5}},
                                      {"episode": {"r": 4.0, "l": 40, "t": 1.5}}, {}]


def test_unbatch_gives_each_environment_its_screen():
    screens = np.arange(2 * 3).reshape(2, 3)
    per_env = unbatch_infos({"rgb": screens}, 2)
    assert [info["rgb"].tolist() for info in per_env] == [[0, 1, 2], [3, 4, 5]]


def test_block_steps_consecutive_seeds_with_float32_rewards_and_bool_dones():
    block = EnvBlock("Breakout", 2, 7)
    frames, infos = block.reset()
    assert frames.shape == (2, 84, 84) and frames.dtype == np.uint8 and infos == [{}, {}]
    single = EnvBlock("Breakout", 1, 8)  # rank 1 of the block is seeded 7 + 1
    np.testing.assert_array_equal(single.reset()[0][0], frames[1])
    frames, rewards, dones, infos = block.step(np.array([1, 2]))
    assert rewards.dtype == np.float32 and dones.dtype == bool and len(infos) == 2
    block.close()
    single.close()
