"""Which gaze samples each saliency map is scored against, and fixation maps (docs/spec/protocol.md, section 5).

A trial has N PNGs (1..N). With MaxAndSkip(4) the network acts on observations k = 0..K-1,
K = ceil((N - 1) / 4): observation 0 is PNG 1, observation k >= 1 is max(PNG 4k, PNG 4k+1),
and the stack of observation k shows observations k-3..k. Label row n holds the gaze recorded
while PNG n was on screen.
"""

from __future__ import annotations

import numpy as np

RAW_SHAPE = (210, 160)
PROCESSED_SHAPE = (84, 84)
ALIGNMENTS = ("original", "displayed")


def num_maps(n_frames: int) -> int:
    """K = ceil((N - 1) / 4): the observations a network acts on before the one that ends the trial."""
    return max(0, -(-(n_frames - 1) // 4))


def gaze_rows(k: int, n_frames: int, alignment: str = "original") -> list[int]:
    """Label rows (numbered from 1) whose gaze map k is scored against.

    ``original``: rows {4k-13, 4k-12, 4k-9, 4k-8, 4k-5, 4k-4, 4k-1, 4k}, the original code's choice
    (one PNG before what the stack shows; it reproduces the paper's Table 4).
    ``displayed``: exactly the PNGs the stack displays, {4j, 4j+1} for j = k-3..k (PNG 1 for j = 0).
    """
    if alignment == "original":
        rows = [4 * k - j for j in (13, 12, 9, 8, 5, 4, 1, 0)]
    elif alignment == "displayed":
        rows = [4 * j + d for j in range(k - 3, k + 1) if j >= 0 for d in (0, 1)]
    else:
        raise ValueError(f"unknown gaze alignment {alignment!r}; choose one of {ALIGNMENTS}")
    return [n for n in rows if 1 <= n <= n_frames]


def fixation_maps(gaze_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer counts of gaze samples (M, 2) as (x, y) in 160x210 frame pixels, on the raw and the 84x84 grid.

    Raw: pixel (round(y), round(x)); processed: (round(y / 210 * 84), round(x / 160 * 84)); rounding
    half to even, as Python's round; samples that land outside the grid are dropped.
    """
    raw = np.zeros(RAW_SHAPE, np.int64)
    processed = np.zeros(PROCESSED_SHAPE, np.int64)
    if len(gaze_xy):
        x, y = gaze_xy[:, 0].astype(np.float64), gaze_xy[:, 1].astype(np.float64)
        _count(raw, np.rint(y), np.rint(x))
        _count(processed, np.rint(y / RAW_SHAPE[0] * PROCESSED_SHAPE[0]), np.rint(x / RAW_SHAPE[1] * PROCESSED_SHAPE[1]))
    return raw, processed


def fixation_map(gaze_xy: np.ndarray, resolution: str) -> np.ndarray:
    """The counts of ``fixation_maps`` on the grid of the scoring resolution ("raw" or "processed")."""
    return fixation_maps(gaze_xy)[0 if resolution == "raw" else 1]


def _count(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    inside = (rows >= 0) & (rows < grid.shape[0]) & (cols >= 0) & (cols < grid.shape[1])
    np.add.at(grid, (rows[inside].astype(np.int64), cols[inside].astype(np.int64)), 1)


def trial_gaze(gaze_per_row: list[np.ndarray], k: int, alignment: str = "original") -> np.ndarray:
    """All gaze samples (M, 2) that map k is scored against."""
    rows = gaze_rows(k, len(gaze_per_row), alignment)
    samples = [gaze_per_row[n - 1] for n in rows if len(gaze_per_row[n - 1])]
    return np.concatenate(samples) if samples else np.zeros((0, 2))
