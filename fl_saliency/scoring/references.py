"""Reference saliency maps scored like a method's maps: the floor and the ceiling of every table.

- ``uniform``: chance. Every pixel an independent draw from U(0, 1) (``numpy.random.default_rng``
  seeded with the trial number), a map that knows nothing of the screen or the gaze. A constant
  map would leave NSS, sAUC and the original's KL undefined (their definitions divide by the
  map's spread), so chance is pure noise: in expectation NSS 0, AUC-Judd and sAUC 0.5, CC 0.
- ``center-bias``: where this player looks in this game regardless of the frame. The gaze samples
  of every label row of the game's OTHER trials (leave-one-trial-out), counted on the scoring
  grid and made a density by ``gaze_density``; the same map for every frame of the trial. It is
  also the baseline of the information gain.
- ``gaze-neighbour``: the same human's gaze just before and after the scored frames, an upper
  reference for a map predicted from the screen alone. For map k scored against label rows
  lo..hi (``gaze.gaze_rows``, their first and last), the samples of rows lo-8..lo-1 and
  hi+1..hi+8 that exist (8 rows = 2 observations each side; no scored row is used), made a
  density by ``gaze_density``.

``gaze_density``: counts blurred with the KL metric's Gaussian (``metrics.blur_fixations``,
sigma 5 px raw / 2 px processed), normalised to sum 1 and mixed with 1% of the uniform density,
so that no pixel has density 0 (the original's KL is undefined there and information gain
would charge log2(eps), about -52 bits, for a fixation on it). Without any sample it is uniform.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from fl_saliency.scoring.atari_head.gaze import fixation_map, gaze_rows
from fl_saliency.scoring.gaze_metrics import blur_fixations

REFERENCES = ("uniform", "center-bias", "gaze-neighbour")
UNIFORM_WEIGHT = 0.01
NEIGHBOUR_ROWS = 8


def gaze_density(counts: np.ndarray, sigma: float) -> np.ndarray:
    """The fixation counts blurred, normalised and mixed with ``UNIFORM_WEIGHT`` of the uniform density."""
    uniform = np.full(counts.shape, 1.0 / counts.size)
    blurred = blur_fixations(counts, sigma)
    total = blurred.sum()
    if total <= 0:
        return uniform
    return (1 - UNIFORM_WEIGHT) * blurred / total + UNIFORM_WEIGHT * uniform


def center_bias(other_trials_counts: Sequence[np.ndarray], shape: tuple, sigma: float) -> np.ndarray:
    """The density of the summed fixation counts of the other trials (uniform without any)."""
    return gaze_density(np.sum(other_trials_counts, axis=0) if len(other_trials_counts)
                        else np.zeros(shape, np.int64), sigma)


def uniform_maps(k_maps: int, shape: tuple, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    for _ in range(k_maps):
        yield rng.random(shape)


def neighbour_rows(k: int, n_frames: int, alignment: str, radius: int = NEIGHBOUR_ROWS) -> list[int]:
    """Label rows (from 1) just outside the span of map k's rows: lo-radius..lo-1 and hi+1..hi+radius."""
    scored = gaze_rows(k, n_frames, alignment)
    if not scored:  # a map without gaze rows is not scored
        return []
    lo, hi = min(scored), max(scored)
    return [n for n in [*range(lo - radius, lo), *range(hi + 1, hi + 1 + radius)] if 1 <= n <= n_frames]


def gaze_neighbour_maps(gaze_per_row: list[np.ndarray], k_maps: int, alignment: str, resolution: str,
                        sigma: float) -> Iterator[np.ndarray]:
    """Map k: the density of the gaze samples of ``neighbour_rows(k)``."""
    for k in range(k_maps):
        samples = [gaze_per_row[n - 1] for n in neighbour_rows(k, len(gaze_per_row), alignment)]
        samples = [s for s in samples if len(s)]
        counts = fixation_map(np.concatenate(samples) if samples else np.zeros((0, 2)), resolution)
        yield gaze_density(counts, sigma)
