"""Aggregate statistics of a sweep across games and seeds, with rliable (Agarwal et al. 2021).

Scores are human-normalised (fl_saliency.report.atari_scores) and arranged, per network, as rliable's
(runs x games) matrix; IQM, median, mean and optimality gap get stratified bootstrap 95%
confidence intervals (percentile method, resampling runs within each game) from a fixed seed,
so a report is reproducible. The same is done for the saliency metrics against Atari-HEAD gaze.

A cell of the matrix is one (game, network); an interval is given only when every game of the
matrix has at least MIN_RUNS runs: with 2 runs a bootstrap has 3 distinct resamples per game and
its "interval" is the range of the data, so fewer runs give the point estimate and say why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_saliency.report.atari_scores import RANDOM_HUMAN, human_normalised

MIN_RUNS = 3
REPS = 2000
SEED = 0
BASELINE = "cnn"
SCORE_AGGREGATES = ("IQM", "median", "mean", "optimality gap")
SALIENCY_AGGREGATES = ("IQM", "mean")
PROFILE_TAUS = np.linspace(0.0, 2.0, 81)


@dataclass
class Matrix:
    """rliable's (runs x games) matrix of one network; rows beyond the game with fewest runs are dropped."""

    games: list[str]
    scores: np.ndarray
    runs_per_game: list[int]  # before dropping

    @property
    def enough_runs(self) -> bool:
        return self.scores.shape[0] >= MIN_RUNS

    @property
    def note(self) -> str:
        if not self.enough_runs:
            return f"no interval: {self.scores.shape[0]} run(s) per game, {MIN_RUNS} needed"
        if len(set(self.runs_per_game)) > 1:
            return f"first {self.scores.shape[0]} runs (by seed) of each game"
        return ""


@dataclass
class Estimate:
    point: float
    interval: tuple[float, float] | None  # None: too few runs


def build_matrices(cells: dict[tuple[str, str], list[float]]) -> dict[str, Matrix]:
    """Per network, its (runs x games) matrix from ``{(game, network): values in seed order}``; empty cells are left out."""
    networks = sorted({network for _, network in cells})
    matrices = {}
    for network in networks:
        columns = {game: values for (game, n), values in sorted(cells.items()) if n == network and values}
        if not columns:
            continue
        rows = min(len(v) for v in columns.values())
        matrices[network] = Matrix(list(columns), np.array([v[:rows] for v in columns.values()], np.float64).T,
                                   [len(v) for v in columns.values()])
    return matrices


def normalised_score_cells(cells: dict[tuple[str, str], list[float]]) -> tuple[dict, list[str]]:
    """Human-normalised score cells, and the games left out for want of random and human scores."""
    known = {key: [human_normalised(key[0], s) for s in values] for key, values in cells.items() if key[0] in RANDOM_HUMAN}
    return known, sorted({game for game, _ in cells if game not in RANDOM_HUMAN})


def _bootstrap(score_dict: dict, func, seed: int, reps: int | None):
    """rliable's interval estimates, reproducible from ``seed``; ``reps`` defaults to REPS (read when called).

    rliable 1.2.0 draws its resamples with ``np.random.choice`` (StratifiedBootstrap.update_indices),
    from NumPy's global state, whatever ``random_state`` says: that state is seeded here and put back after.
    """
    from rliable import library as rly

    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        return rly.get_interval_estimates(score_dict, func, reps=reps or REPS)
    finally:
        np.random.set_state(saved)


def _aggregate_function(names: tuple[str, ...]):
    from rliable import metrics

    functions = {"IQM": metrics.aggregate_iqm, "median": metrics.aggregate_median, "mean": metrics.aggregate_mean,
                 "optimality gap": metrics.aggregate_optimality_gap}
    return lambda scores: np.array([functions[name](scores) for name in names])


def aggregates(matrices: dict[str, Matrix], names: tuple[str, ...] = SCORE_AGGREGATES, seed: int = SEED,
               reps: int | None = None) -> dict[str, dict[str, Estimate]]:
    """``{network: {aggregate: Estimate}}``; intervals from one bootstrap of each network with enough runs."""
    func = _aggregate_function(names)
    enough = {n: m.scores for n, m in matrices.items() if m.enough_runs}
    points, intervals = _bootstrap(enough, func, seed, reps) if enough else ({}, {})
    result = {}
    for network, matrix in matrices.items():
        values = points[network] if network in points else func(matrix.scores)
        result[network] = {name: Estimate(float(values[i]), (float(intervals[network][0, i]),
                                                              float(intervals[network][1, i]))
                                          if network in intervals else None) for i, name in enumerate(names)}
    return result


def improvement_over(matrices: dict[str, Matrix], baseline: str = BASELINE, seed: int = SEED,
                     reps: int | None = None) -> dict[str, tuple[list[str], Estimate]]:
    """P(network > baseline) on the games both played (rliable's probability of improvement), with its interval."""
    from rliable import metrics

    if baseline not in matrices:
        return {}
    base = matrices[baseline]
    pairs, shared_games, enough = {}, {}, {}
    for network, matrix in matrices.items():
        games = [g for g in matrix.games if g in base.games and network != baseline]
        if not games:
            continue
        x = matrix.scores[:, [matrix.games.index(g) for g in games]]
        y = base.scores[:, [base.games.index(g) for g in games]]
        pairs[network], shared_games[network] = (x, y), games
        enough[network] = matrix.enough_runs and base.enough_runs
    wanted = {n: pair for n, pair in pairs.items() if enough[n]}
    points, intervals = _bootstrap(wanted, metrics.probability_of_improvement, seed, reps) if wanted else ({}, {})
    return {network: (shared_games[network],
                      Estimate(float(points[network]) if network in points else float(metrics.probability_of_improvement(*pair)),
                               (float(intervals[network][0, 0]), float(intervals[network][1, 0]))
                               if network in intervals else None))
            for network, pair in pairs.items()}


def performance_profiles(matrices: dict[str, Matrix], taus: np.ndarray = PROFILE_TAUS, seed: int = SEED,
                         reps: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per network, the fraction of runs with a normalised score above each tau (rliable's score distribution),
    and its (2, len(taus)) interval where the network has enough runs."""
    from rliable import library as rly

    def profile(scores):
        return rly.score_distributions(scores, taus)

    enough = {n: m.scores for n, m in matrices.items() if m.enough_runs}
    _, intervals = _bootstrap(enough, profile, seed, reps) if enough else ({}, {})
    return {n: (profile(m.scores), intervals.get(n)) for n, m in matrices.items()}


