"""The rliable aggregates of a sweep (fl_saliency/report/aggregate.py)."""

import numpy as np

from helpers import SWEEP_RANDOM_HUMAN, SWEEP_SCORES


def test_intervals_are_reproducible_with_a_fixed_seed(few_reps):
    from fl_saliency.report import aggregate

    cells = {}
    for (game, network), values in SWEEP_SCORES.items():
        random, human = SWEEP_RANDOM_HUMAN[game]
        cells[game, network] = [(s - random) / (human - random) for s in values]
    matrices = aggregate.build_matrices(cells)
    first = aggregate.aggregates(matrices)
    np.random.rand(5)  # whatever the global state was left at
    again, other = aggregate.aggregates(matrices), aggregate.aggregates(matrices, seed=1)
    assert first == again and first != other
    profiles = aggregate.performance_profiles(matrices)
    np.testing.assert_array_equal(profiles["cnn"][1], aggregate.performance_profiles(matrices)["cnn"][1])
    # rliable's own profile function gives the same profile.
    from rliable import library as rly

    reference, _ = rly.create_performance_profile({"cnn": matrices["cnn"].scores}, aggregate.PROFILE_TAUS, reps=10)
    np.testing.assert_array_equal(profiles["cnn"][0], reference["cnn"])
