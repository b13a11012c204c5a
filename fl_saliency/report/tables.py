"""The paper's tables (2, 3 and 4) beside ours, and how the report writes numbers: missing as —, a spread
over seeds, a mean with its interval, a value that is not finite marked for a footnote."""

from __future__ import annotations

import math

import numpy as np

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.rundir import SALIENCY_METRICS
from fl_saliency.report.runs import Run

# docs/spec/protocol.md, section 6.
PAPER_TABLE_2 = {"cnn": 1_686_693, "cnn_daqn": 130_726, "cnn_rsppo": 1_720_999, "cnn_sparse_fls": 1_836_710,
                 "cnn_sparse_fls_pool": 263_846, "cnn_dense_fls": 280_358, "cnn_sparse_fls_h1": 1_762_982,
                 "cnn_sparse_fls_x3": 2_063_016}
_T3_GAMES = ("BeamRider", "Breakout", "Enduro", "MsPacman", "Seaquest", "SpaceInvaders")
PAPER_TABLE_3 = {network: dict(zip(_T3_GAMES, scores)) for network, scores in {
    "cnn": (6949, 618, 3808, 4874, 1920, 3867),
    "cnn_daqn": (701, 601, 2182, 3111, 1453, 2096),
    "cnn_rsppo": (583, 605, 3851, 3943, 1670, 2562),
    "cnn_sparse_fls": (6634, 624, 5094, 5421, 2440, 9359),
    "cnn_sparse_fls_pool": (3356, 520, 1917, 4317, 1150, 1847),
    "cnn_dense_fls": (866, 532, 2114, 4977, 1368, 1549),
}.items()}
_T4_GAMES = ("Breakout", "Enduro", "MsPacman", "Seaquest", "SpaceInvaders")
PAPER_TABLE_4_NSS = {network: dict(zip(_T4_GAMES, values)) for network, values in {
    "cnn_daqn": (1.344, 0.586, 0.881, 0.334, 1.899),
    "cnn_rsppo": (0.947, 0.922, 0.943, 0.955, 1.775),
    "cnn_sparse_fls": (0.510, 1.588, 0.631, 0.556, 1.664),
    "cnn_sparse_fls_pool": (0.747, 0.251, 0.621, 0.286, 1.569),
    "cnn_dense_fls": (1.385, 0.629, -0.136, 0.797, -0.230),
}.items()}
MISSING = "—"


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"  # scores in full, never 4e+03


def mean_spread(values: list[float]) -> str:
    if not values:
        return MISSING
    if len(values) == 1:
        return _number(values[0])
    return f"{_number(float(np.mean(values)))} ± {_number(float(np.std(values)))}"


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def fmt_estimate(estimate) -> str:
    if estimate.interval is None:
        return f"{estimate.point:.3g}"
    return f"{estimate.point:.3g} [{estimate.interval[0]:.3g}, {estimate.interval[1]:.3g}]"


# Which way is closer to the gaze, per metric of saliency.json.
METRIC_LABELS = {"nss": "NSS ↑", "kldiv": "KL ↓", "sauc": "sAUC ↑", "auc_judd": "AUC-Judd ↑", "cc": "CC ↑",
                 "sim": "SIM ↑", "mit_kldiv": "MIT KL ↓", "info_gain": "IG (bits/fix) ↑"}


NOT_FINITE = "†"
NOT_FINITE_NOTE = (f"{NOT_FINITE} The file holds NaN or Infinity here (a metric undefined on every map, or an "
                   f"overflow): shown as {MISSING}, or as the mean alone when only its interval is not finite.")


def with_interval(stats: dict | None) -> str:
    """``mean [low, high]``; a value that is not finite (JSON's NaN, Infinity) is shown as missing, marked
    NOT_FINITE for the section's footnote (NOT_FINITE_NOTE)."""
    if not stats or stats.get("mean") is None:
        return MISSING
    if not math.isfinite(stats["mean"]):
        return f"{MISSING} {NOT_FINITE}"
    low, high = stats.get("ci_low"), stats.get("ci_high")
    if low is None or high is None:
        return f"{stats['mean']:.3g}"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{stats['mean']:.3g} {NOT_FINITE}"
    return f"{stats['mean']:.3g} [{low:.3g}, {high:.3g}]"


def finite(value) -> bool:
    return value is not None and math.isfinite(value)


def footnoted(lines: list[str]) -> list[str]:
    """A section's lines, with NOT_FINITE_NOTE after them if one of its cells is marked."""
    return lines + [NOT_FINITE_NOTE, ""] if any(NOT_FINITE in line for line in lines if line.startswith("|")) else lines


def score_table(groups: dict[tuple[str, str], list[Run]]) -> list[str]:
    """The evaluation scores of each (game, network) over its seeds beside the paper's Table 3."""
    lines = ["## Evaluation score (paper's Table 3)", "",
             "| game | network | seeds | evaluated | mean score | paper |", "|---|---|---:|---:|---:|---:|"]
    for (game, network), group in sorted(groups.items()):
        scores = [r.mean_score for r in group if r.mean_score is not None]
        lines.append(f"| {game} | {network} | {len(group)} | {len(scores)} | {mean_spread(scores)} | "
                     f"{fmt(PAPER_TABLE_3.get(network, {}).get(game))} |")
    return lines


def saliency_table(groups: dict[tuple[str, str], list[Run]]) -> list[str]:
    """The original's three saliency metrics (saliency.pkl) of each (game, network) beside the paper's Table 4."""
    lines = ["## Saliency against Atari-HEAD gaze (paper's Table 4: NSS)", "",
             "| game | network | scored | NSS | KL | sAUC | paper NSS |", "|---|---|---:|---:|---:|---:|---:|"]
    for (game, network), group in sorted(groups.items()):
        scored = [r for r in group if r.saliency]
        cells = [mean_spread([r.saliency[m] for r in scored if m in r.saliency]) for m in SALIENCY_METRICS]
        lines.append(f"| {game} | {network} | {len(scored)} | {' | '.join(cells)} | "
                     f"{fmt(PAPER_TABLE_4_NSS.get(network, {}).get(game))} |")
    return lines


def parameter_table(networks: list[str]) -> list[str]:
    """Our parameter count of each network on a 4-action game beside the paper's Table 2."""
    from fl_saliency.agents.networks import ActorCritic, parameter_count

    lines = ["## Parameters, 4-action game (paper's Table 2)", "", "| network | ours | paper |", "|---|---:|---:|"]
    for network in networks:
        try:
            ours = parameter_count(ActorCritic(network, 4, initialise=False))
        except FlSaliencyError:
            ours = None
        lines.append(f"| {network} | {fmt(ours)} | {fmt(PAPER_TABLE_2.get(network))} |")
    return lines
