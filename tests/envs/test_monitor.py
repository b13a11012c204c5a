"""Monitor accounting (fl_saliency/envs/monitor.py), against values worked out by hand."""

from __future__ import annotations

import numpy as np

from fl_saliency.envs.monitor import EpisodeTally


def test_tally_reports_ended_games_and_restarts_only_them():
    tally = EpisodeTally(3)
    tally.add(np.array([1, 0, 7]))
    tally.add(np.array([4.5, 2, 0]))
    episodes = tally.finish(np.array([True, False, True]))
    assert sorted(episodes) == [0, 2]
    assert (episodes[0]["r"], episodes[0]["l"]) == (5.5, 2) and (episodes[2]["r"], episodes[2]["l"]) == (7.0, 2)
    assert episodes[0]["t"] == episodes[2]["t"] >= 0
    tally.add(np.array([1, 1, 1]))
    episodes = tally.finish(np.array([True, True, False]))
    assert [(e["r"], e["l"]) for e in episodes.values()] == [(1.0, 1), (3.0, 3)]
    assert tally.finish(np.zeros(3, bool)) == {}
    tally.restart()
    tally.add(np.array([0.1 + 0.2, 0, 0]))
    assert tally.finish(np.array([True, False, False]))[0]["r"] == 0.3  # rounded to 6 decimals, as Baselines
