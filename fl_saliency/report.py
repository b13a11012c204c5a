"""A sweep folder (ours or the paper's released models) against the paper's tables: report.md and plots.

Reads ``D/<Game>.<network>/<seed>/``: ``config.json``, ``results.json`` (or the paper's
``eval.pkl``), ``saliency.pkl``, and the learning curve from ``logs/progress.csv`` (or the
TensorBoard events). A piece that is missing shows as missing (—), never as zero.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fl_saliency.checkpoint import CheckpointError, load_restricted
from fl_saliency.errors import FlSaliencyError
from fl_saliency.io import atomic_write, ensure_output_dir

# protocol.md section 6.
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
SALIENCY_METRICS = ("nss", "kldiv", "sauc")
MISSING = "—"


@dataclass
class Run:
    game: str
    network: str
    seed: str
    folder: Path
    mean_score: float | None = None
    saliency: dict[str, float] = field(default_factory=dict)
    curve: tuple[np.ndarray, np.ndarray] | None = None  # (total_timesteps, eprewmean)


def _rewards(folder: Path) -> list[float] | None:
    import json

    if (folder / "results.json").exists():
        return json.loads((folder / "results.json").read_text()).get("rewards")
    if (folder / "eval.pkl").exists():
        try:
            data = load_restricted(folder / "eval.pkl", "evaluation file")
        except CheckpointError:
            return None
        return list(data["rewards"]) if isinstance(data, dict) and "rewards" in data else None
    return None


def _saliency(folder: Path) -> dict[str, float]:
    if not (folder / "saliency.pkl").exists():
        return {}
    from fl_saliency.atari_head.benchmark import summarise

    overall = summarise(load_restricted(folder / "saliency.pkl", "saliency file"))["overall"]
    return {metric: stats["mean"] for metric, stats in overall.items() if stats["count"]}


def _curve(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    progress = folder / "logs" / "progress.csv"
    if progress.exists():
        with open(progress) as f:
            rows = [r for r in csv.DictReader(f) if r["eprewmean"] not in ("", "nan")]
        if rows:
            return (np.array([float(r["total_timesteps"]) for r in rows]), np.array([float(r["eprewmean"]) for r in rows]))
        return None
    events = sorted(folder.glob("events.out.tfevents.*")) + sorted((folder / "tb").glob("events.out.tfevents.*"))
    if not events:
        return None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[-1]), size_guidance={"scalars": 0})
    accumulator.Reload()
    tag = next((t for t in accumulator.Tags().get("scalars", []) if t.endswith("eprewmean")), None)
    if tag is None:
        return None
    scalars = accumulator.Scalars(tag)
    return np.array([s.step for s in scalars], float), np.array([s.value for s in scalars], float)


def read_sweep(root: Path) -> list[Run]:
    """Every ``<Game>.<network>/<seed>/`` run folder under ``root`` and what it holds."""
    if not root.is_dir():
        raise FlSaliencyError(f"sweep folder not found: {root}")
    runs = []
    for group in sorted(p for p in root.iterdir() if p.is_dir() and "." in p.name):
        game, network = group.name.split(".", 1)
        for folder in sorted(p for p in group.iterdir() if p.is_dir()):
            rewards = _rewards(folder)
            runs.append(Run(game, network, folder.name, folder,
                            mean_score=float(np.mean(rewards)) if rewards else None,
                            saliency=_saliency(folder), curve=_curve(folder)))
    if not runs:
        raise FlSaliencyError(f"{root} holds no <Game>.<network>/<seed>/ run folders")
    return runs


def _mean_spread(values: list[float]) -> str:
    if not values:
        return MISSING
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{np.mean(values):.4g} ± {np.std(values):.2g}"


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def plot_learning_curves(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], title: str, path: Path) -> Path:
    """One PNG: per label, the mean over its seeds' (agent steps, eprewmean) curves and their min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, seed_curves in curves.items():
        steps = np.unique(np.concatenate([c[0] for c in seed_curves]))
        ys = np.stack([np.interp(steps, c[0], c[1], left=np.nan, right=np.nan) for c in seed_curves])
        with warnings.catch_warnings():  # all-NaN columns (before a seed's first game) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(ys, axis=0)
        line, = ax.plot(steps, mean, label=f"{label} ({len(seed_curves)} seed{'s' if len(seed_curves) > 1 else ''})")
        if len(seed_curves) > 1:
            ax.fill_between(steps, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), color=line.get_color(), alpha=0.2)
    ax.set(title=title, xlabel="agent steps", ylabel="eprewmean")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(runs: list[Run], out: Path) -> list[Path]:
    """One PNG per game: eprewmean against agent steps, mean and min-max band over seeds per network."""
    paths = []
    for game in sorted({r.game for r in runs}):
        by_network: dict[str, list] = {}
        for run in runs:
            if run.game == game and run.curve is not None:
                by_network.setdefault(run.network, []).append(run.curve)
        if by_network:
            paths.append(plot_learning_curves(dict(sorted(by_network.items())),
                                              f"{game}: mean episode score (last 100 games)", out / f"curves_{game}.png"))
    return paths


def write_report(root: Path, out: Path | None = None) -> Path:
    """Write ``report.md`` and the PNG plots into ``out`` (the sweep folder by default)."""
    from fl_saliency.networks import ActorCritic, parameter_count

    runs = read_sweep(root)
    out = ensure_output_dir(out or root)
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.game, run.network), []).append(run)

    lines = [f"# fl-saliency report: {root}", "",
             f"{len(runs)} runs in {len(groups)} (game, network) groups. Spread is the std over seeds; "
             f"{MISSING} marks what a run does not have (not evaluated, not scored).", "",
             "## Evaluation score (paper's Table 3)", "",
             "| game | network | seeds | evaluated | mean score | paper |", "|---|---|---:|---:|---:|---:|"]
    for (game, network), group in sorted(groups.items()):
        scores = [r.mean_score for r in group if r.mean_score is not None]
        lines.append(f"| {game} | {network} | {len(group)} | {len(scores)} | {_mean_spread(scores)} | "
                     f"{_fmt(PAPER_TABLE_3.get(network, {}).get(game))} |")
    lines += ["", "## Saliency against Atari-HEAD gaze (paper's Table 4: NSS)", "",
              "| game | network | scored | NSS | KL | sAUC | paper NSS |", "|---|---|---:|---:|---:|---:|---:|"]
    for (game, network), group in sorted(groups.items()):
        scored = [r for r in group if r.saliency]
        cells = [_mean_spread([r.saliency[m] for r in scored if m in r.saliency]) for m in SALIENCY_METRICS]
        lines.append(f"| {game} | {network} | {len(scored)} | {' | '.join(cells)} | "
                     f"{_fmt(PAPER_TABLE_4_NSS.get(network, {}).get(game))} |")
    plots = plot_curves(runs, out)
    lines += ["", "## Learning curves (paper's Fig. 3)", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots] or [f"{MISSING} (no run has a learning curve)"]
    lines += ["", "## Parameters, 4-action game (paper's Table 2)", "", "| network | ours | paper |", "|---|---:|---:|"]
    for network in sorted({n for _, n in groups}):
        try:
            ours = parameter_count(ActorCritic(network, 4, initialise=False))
        except FlSaliencyError:
            ours = None
        lines.append(f"| {network} | {_fmt(ours)} | {_fmt(PAPER_TABLE_2.get(network))} |")
    path = out / "report.md"
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
