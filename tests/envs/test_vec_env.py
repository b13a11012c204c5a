"""The vector env interface's helpers (fl_saliency/envs/vec_env.py)."""

from __future__ import annotations

from fl_saliency.envs.vec_env import split_evenly


def test_split_evenly_covers_the_ranks_in_order():
    assert split_evenly(8, 2) == [(0, 4), (4, 8)]
    assert split_evenly(5, 2) == [(0, 2), (2, 5)]
    assert split_evenly(16, 3) == [(0, 5), (5, 11), (11, 16)]
    assert split_evenly(3, 1) == [(0, 3)]
