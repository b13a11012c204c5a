"""Every figure of the report, each one PNG written with save_figure (matplotlib, headless)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from fl_saliency.common.io import atomic_write
from fl_saliency.report.aggregate import PROFILE_TAUS, Estimate
from fl_saliency.report.runs import Run, scored_rows
from fl_saliency.report.tables import METRIC_LABELS, finite


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically, and close it."""
    plt = pyplot()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_learning_curves(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], title: str, path: Path) -> Path:
    """One PNG: per label, the mean over its seeds' (agent steps, eprewmean) curves and their min-max band."""
    plt = pyplot()

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
    return save_figure(fig, path)


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


def plot_methods(game: str, runs: list[Run], path: Path) -> Path:
    """One PNG: per metric, each run's methods as points with their 95% CI, its references as horizontal lines."""
    plt = pyplot()

    rows = scored_rows(runs)
    metrics = [m for m in METRIC_LABELS if any(m in overall for *_, overall in rows)]
    methods = [(label, name, overall) for label, kind, name, overall in rows if kind == "method"]
    references = sorted({name for _, kind, name, _ in rows if kind == "reference"})
    colours = dict(zip(references, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    columns = min(4, len(metrics))
    fig, axes = plt.subplots(-(-len(metrics) // columns), columns, squeeze=False,
                             figsize=(3.2 * columns, 0.5 + 2.8 * -(-len(metrics) // columns)))
    several = len(runs) > 1
    for ax, metric in zip(axes.flat, metrics):
        for x, (label, name, overall) in enumerate(methods):
            stats = overall.get(metric) or {}
            if not finite(stats.get("mean")):
                continue
            low, high = stats.get("ci_low"), stats.get("ci_high")
            error = [[stats["mean"] - low], [high - stats["mean"]]] if finite(low) and finite(high) else None
            ax.errorbar([x], [stats["mean"]], yerr=error, fmt="o", color="black", capsize=3)
        for label, kind, name, overall in rows:
            stats = overall.get(metric) or {}
            if kind == "reference" and finite(stats.get("mean")):
                ax.axhline(stats["mean"], color=colours[name], linestyle="--", linewidth=1)
        ax.set_xticks(range(len(methods)), [f"{label} {name}" if several else name for label, name, _ in methods],
                      rotation=45, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_title(METRIC_LABELS[metric], fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colours[name], linestyle="--", label=name) for name in references]
    handles.append(plt.Line2D([], [], color="black", marker="o", linestyle="", label="method (95% CI)"))
    fig.tight_layout()
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(f"{game}: saliency methods against gaze", y=1.06)
    return save_figure(fig, path)


def plot_profiles(profiles: dict[str, tuple[np.ndarray, np.ndarray | None]], path: Path,
                  taus: np.ndarray = PROFILE_TAUS) -> Path:
    """One PNG: the performance profiles with their 95% bands (rliable.plot_utils)."""
    from rliable import plot_utils

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.5))
    with_band = {n: p for n, (p, ci) in profiles.items() if ci is not None}
    plot_utils.plot_performance_profiles(with_band or {n: p for n, (p, _) in profiles.items()}, taus,
                                         performance_profile_cis={n: profiles[n][1] for n in with_band} or None,
                                         xlabel=r"human-normalised score $(\tau)$", ax=ax, legend=True,
                                         **PLOT_FONTS)
    for network, (profile, ci) in profiles.items():  # networks without an interval: the line alone
        if with_band and ci is None:
            ax.plot(taus, profile, linestyle="--", label=f"{network} (no interval)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


# rliable's defaults (x-large) against matplotlib's 10-point ticks and the other plots' 9-point labels.
PLOT_FONTS = {"labelsize": 9, "ticklabelsize": 10, "legendsize": 8}


def _tick(value: float, _position=None) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _readable_x_axis(ax, values: list[float]) -> None:
    """At most 5 ticks, labelled in full (no offset or exponent text under the axis) on a span of at least 10% of
    the values' size, so that a narrow interval or a point estimate alone does not give ticks a digit apart."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    low, high = min(values), max(values)
    span = max(high - low, 0.1 * max(abs(low), abs(high)), 0.01)
    middle = (low + high) / 2
    ax.set_xlim(middle - 0.6 * span, middle + 0.6 * span)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))


def plot_aggregates(estimates: dict[str, dict[str, Estimate]], title: str, path: Path) -> Path:
    """One PNG: per aggregate, each network's point estimate and 95% interval (a dot alone: no interval)."""
    plt = pyplot()

    networks = sorted(estimates)
    names = list(next(iter(estimates.values())))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 0.45 * len(networks) + 1.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for row, network in enumerate(networks):
            estimate = estimates[network][name]
            if estimate.interval is not None:
                ax.barh(row, estimate.interval[1] - estimate.interval[0], left=estimate.interval[0], height=0.6,
                        color=f"C{row}", alpha=0.6)
            ax.plot([estimate.point], [row], "k|", markersize=14)
        _readable_x_axis(ax, [v for network in networks for v in (estimates[network][name].point,
                                                               *(estimates[network][name].interval or ()))])
        ax.set_yticks(range(len(networks)), networks if ax is axes[0][0] else [""] * len(networks))
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
