"""The rliable aggregates of a sweep (fl_saliency/report/aggregate.py)."""

import numpy as np

from helpers import SWEEP_RANDOM_HUMAN, SWEEP_SCORES


def test_intervals_are_reproducible_with_a_fixed_seed(few_reps):
    from fl_saliency.report import aggregate

    normalised = lambda game, s: (s - SWEEP_RANDOM_HUMAN[game][0]) / (SWEEP_RANDOM_HUMAN[game][1] - SWEEP_RANDOM_HUMAN[game][0])
    cells = {key: [normalised(key[0], s) for s in values] for key, values in SWEEP_SCORES.items()}
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
