import math

import numpy as np
import pytest

from fl_saliency.scoring.atari_head.env import agent_observations
from fl_saliency.scoring.atari_head.gaze import fixation_maps, gaze_rows, num_maps, trial_gaze


@pytest.mark.parametrize("n_frames", [2, 5, 6, 9, 10, 100, 101, 102, 103])
def test_number_of_maps_is_ceil_of_n_minus_1_over_4(n_frames):
    assert num_maps(n_frames) == math.ceil((n_frames - 1) / 4)
    # ... and it is the number of observations the trial env yields.
    frames = [np.full((210, 160, 3), i % 256, np.uint8) for i in range(n_frames)]
    assert sum(1 for _ in agent_observations(lambda: iter(frames))) == num_maps(n_frames)


def encoded_gaze(n_frames):
    """Row n's single gaze sample sits at pixel (y, x) = divmod(n, 160): the map reveals its rows."""
    return [np.array([[n % 160, n // 160]], float) for n in range(1, n_frames + 1)]


def rows_seen(raw_map):
    ys, xs = np.nonzero(raw_map)
    return sorted(int(y * 160 + x) for y, x in zip(ys, xs))


@pytest.mark.parametrize(
    "k, original, displayed",
    [
        (0, [], [1]),
        (1, [3, 4], [1, 4, 5]),
        (3, [3, 4, 7, 8, 11, 12], [1, 4, 5, 8, 9, 12, 13]),
        (10, [27, 28, 31, 32, 35, 36, 39, 40], [28, 29, 32, 33, 36, 37, 40, 41]),
    ],
)
def test_both_alignments_pick_the_rows_of_the_spec(k, original, displayed):
    gaze = encoded_gaze(200)
    assert gaze_rows(k, 200, "original") == original
    assert gaze_rows(k, 200, "displayed") == displayed
    assert rows_seen(fixation_maps(trial_gaze(gaze, k, "original"))[0]) == original
    assert rows_seen(fixation_maps(trial_gaze(gaze, k, "displayed"))[0]) == displayed


def test_rows_past_the_last_frame_are_dropped():
    assert gaze_rows(25, 101, "displayed") == [88, 89, 92, 93, 96, 97, 100, 101]
    assert gaze_rows(25, 100, "displayed") == [88, 89, 92, 93, 96, 97, 100]
    with pytest.raises(ValueError):
        gaze_rows(1, 10, "later")


def test_fixation_maps_round_half_to_even_and_drop_off_screen_samples():
    samples = np.array([
        [2.5, 3.5],     # raw (y=4, x=2): both halves go to the even neighbour
        [2.5, 3.5],     # counted twice
        [-0.4, 10.0],   # x rounds to 0: inside
        [-0.6, 10.0],   # x rounds to -1: dropped
        [159.6, 10.0],  # x rounds to 160: dropped (raw), processed x = 83.79 -> 84: dropped
        [80.0, 209.4],  # y rounds to 209: inside
        [80.0, 209.5],  # y rounds to 210 (half to even): dropped; processed 83.8 -> 84 dropped
    ])
    raw, processed = fixation_maps(samples)
    assert raw.dtype == np.int64 and raw.shape == (210, 160) and processed.shape == (84, 84)
    assert raw[4, 2] == 2 and raw[10, 0] == 1 and raw[209, 80] == 1 and raw.sum() == 4
    expected = {}
    for x, y in samples:
        r, c = round(y / 210 * 84), round(x / 160 * 84)  # Python's round, as the original
        if 0 <= r < 84 and 0 <= c < 84:
            expected[(r, c)] = expected.get((r, c), 0) + 1
    assert {(int(r), int(c)): int(processed[r, c]) for r, c in zip(*np.nonzero(processed))} == expected
