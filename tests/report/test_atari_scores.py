"""The random and human scores of the Atari games (fl_saliency/report/atari_scores.py)."""

import pytest


def test_human_normalised_score_is_0_for_random_and_1_for_human():
    from fl_saliency.report.atari_scores import human_normalised
    from fl_saliency.common.errors import FlSaliencyError

    assert human_normalised("Breakout", 1.7) == 0.0 and human_normalised("Breakout", 30.5) == pytest.approx(1.0)
    assert human_normalised("Pong", -20.7 + 2 * 35.3) == pytest.approx(2.0)  # random -20.7, human 14.6
    with pytest.raises(FlSaliencyError, match="no random and human scores for 'Breakout-v5'"):
        human_normalised("Breakout-v5", 1.0)
