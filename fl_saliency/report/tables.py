"""A sweep folder (ours or the paper's released models) against the paper's tables: report.md and plots.

Reads ``D/<Game>.<network>/<seed>/``: ``results.json`` (or the paper's ``eval.pkl``),
``saliency.pkl`` (the original's records, both historical formats), ``saliency.json`` (every
saliency method and reference), ``faithfulness.json`` (fl-saliency faithfulness), and the learning
curve from ``logs/progress.csv`` or the TensorBoard events (the paper's runs ship only those). A piece that
is missing shows as missing (—), never as zero; a file that cannot be read is named in one line
and in the report, and the rest of the sweep is reported.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fl_saliency.common import rundir
from fl_saliency.common.errors import FlSaliencyError, require_extra
from fl_saliency.common.io import atomic_write, ensure_output_dir
from fl_saliency.common.rundir import (SALIENCY_METRICS, UnreadableFile, read_benchmark, read_curve,
                                       read_faithfulness, read_rewards, read_saliency)

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


@dataclass
class Run:
    game: str
    network: str
    seed: str
    folder: Path
    mean_score: float | None = None
    saliency: dict[str, float] = field(default_factory=dict)
    # From saliency.json: {"methods" | "references": {name: {metric: {mean, ci_low, ci_high, ...}}}}
    benchmark: dict[str, dict[str, dict]] | None = None
    faithfulness: dict | None = None  # read_faithfulness's summary of faithfulness.json
    curve: tuple[np.ndarray, np.ndarray] | None = None  # (total_timesteps, eprewmean)
    problems: list[str] = field(default_factory=list)  # one line per unreadable file


def read_run(game: str, network: str, folder: Path) -> Run:
    """What one run folder holds; each unreadable file is one line in ``problems``, its piece missing."""
    run = Run(game, network, folder.name, folder)
    try:
        rewards = read_rewards(folder)
        run.mean_score = float(np.mean(rewards)) if rewards else None
    except UnreadableFile as exc:
        run.problems.append(str(exc))
    if (folder / rundir.SALIENCY_FILE).exists():
        from fl_saliency.scoring.benchmark import metric_summary

        try:
            overall = metric_summary(read_saliency(folder / rundir.SALIENCY_FILE))["overall"]
            run.saliency = {metric: stats["mean"] for metric, stats in overall.items() if stats["count"]}
        except UnreadableFile as exc:
            run.problems.append(str(exc))
    if (folder / rundir.SALIENCY_JSON).exists():
        try:
            run.benchmark = read_benchmark(folder / rundir.SALIENCY_JSON)
        except UnreadableFile as exc:
            run.problems.append(str(exc))
    if (folder / rundir.FAITHFULNESS_FILE).exists():
        try:
            run.faithfulness = read_faithfulness(folder / rundir.FAITHFULNESS_FILE)
        except UnreadableFile as exc:
            run.problems.append(str(exc))
    try:
        run.curve = read_curve(folder)
    except UnreadableFile as exc:
        run.problems.append(str(exc))
    return run


def read_train_run(folder: Path) -> Run:
    """One ``train`` output folder (config.json at its top); its evaluation, saliency and faithfulness
    summaries may also be in ``eval/``, evaluate's default output folder."""
    from fl_saliency.agents.checkpoint import load_config
    from fl_saliency.envs.games import parse_game

    experiment = load_config(folder / rundir.CONFIG_FILE)
    run = read_run(parse_game(experiment.env_name), experiment.network, folder)
    eval_dir = rundir.evaluation_folders(folder)[1]
    if eval_dir.is_dir():
        evaluated = read_run(run.game, run.network, eval_dir)
        run.mean_score = run.mean_score if run.mean_score is not None else evaluated.mean_score
        run.saliency = run.saliency or evaluated.saliency
        run.benchmark = run.benchmark or evaluated.benchmark
        run.faithfulness = run.faithfulness or evaluated.faithfulness
        run.problems += evaluated.problems
    return run


def read_sweep(root: Path) -> list[Run]:
    """Every ``<Game>.<network>/<seed>/`` run folder under ``root`` and what it holds; or ``root`` itself, a
    single ``train`` run."""
    if not root.is_dir():
        raise FlSaliencyError(f"sweep folder not found: {root}")
    runs = [read_run(*group.name.split(".", 1), folder)
            for group in sorted(p for p in root.iterdir() if p.is_dir() and "." in p.name)
            for folder in sorted(p for p in group.iterdir() if p.is_dir())]
    if not runs and (root / rundir.CONFIG_FILE).is_file():
        runs = [read_train_run(root)]
    if not runs:
        raise FlSaliencyError(f"{root} is neither a train run folder (config.json) nor a sweep folder "
                              f"(<Game>.<network>/<seed>/ run folders)")
    return runs


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"  # scores in full, never 4e+03


def _mean_spread(values: list[float]) -> str:
    if not values:
        return MISSING
    if len(values) == 1:
        return _number(values[0])
    return f"{_number(float(np.mean(values)))} ± {_number(float(np.std(values)))}"


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


def _estimate(estimate) -> str:
    if estimate.interval is None:
        return f"{estimate.point:.3g}"
    return f"{estimate.point:.3g} [{estimate.interval[0]:.3g}, {estimate.interval[1]:.3g}]"


# Which way is closer to the gaze, per metric of saliency.json.
METRIC_LABELS = {"nss": "NSS ↑", "kldiv": "KL ↓", "sauc": "sAUC ↑", "auc_judd": "AUC-Judd ↑", "cc": "CC ↑",
                 "sim": "SIM ↑", "mit_kldiv": "MIT KL ↓", "info_gain": "IG (bits/fix) ↑"}


NOT_FINITE = "†"
NOT_FINITE_NOTE = (f"{NOT_FINITE} The file holds NaN or Infinity here (a metric undefined on every map, or an "
                   f"overflow): shown as {MISSING}, or as the mean alone when only its interval is not finite.")


def _with_interval(stats: dict | None) -> str:
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


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _footnoted(lines: list[str]) -> list[str]:
    """A section's lines, with NOT_FINITE_NOTE after them if one of its cells is marked."""
    return lines + [NOT_FINITE_NOTE, ""] if any(NOT_FINITE in line for line in lines if line.startswith("|")) else lines


def _scored_rows(runs: list[Run]) -> list[tuple[str, str, str, dict]]:
    """(run label, kind, name, overall) of each method, then each reference, of each run."""
    return [(f"{run.network}/{run.seed}", kind[:-1], name, overall)
            for run in runs for kind in ("methods", "references") for name, overall in run.benchmark[kind].items()]


def plot_methods(game: str, runs: list[Run], path: Path) -> Path:
    """One PNG: per metric, each run's methods as points with their 95% CI, its references as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _scored_rows(runs)
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
            if not _finite(stats.get("mean")):
                continue
            low, high = stats.get("ci_low"), stats.get("ci_high")
            error = [[stats["mean"] - low], [high - stats["mean"]]] if _finite(low) and _finite(high) else None
            ax.errorbar([x], [stats["mean"]], yerr=error, fmt="o", color="black", capsize=3)
        for label, kind, name, overall in rows:
            stats = overall.get(metric) or {}
            if kind == "reference" and _finite(stats.get("mean")):
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
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def methods_section(runs: list[Run], out: Path) -> list[str]:
    """Per game, the methods x metrics table of its runs' saliency.json (references included) and its plot."""
    lines = ["## Saliency methods and references against gaze (saliency.json)", "",
             "Each run's overall mean over all scored maps with its 95% percentile bootstrap interval over maps; "
             "one row per method and reference of each run (network/seed), since intervals of different runs do "
             "not average. Arrows: which way is closer to the gaze.", ""]
    games = sorted({r.game for r in runs if r.benchmark})
    if not games:
        return lines + [f"{MISSING} (no run has a saliency.json)"]
    for game in games:
        scored = [r for r in runs if r.game == game and r.benchmark]
        rows = _scored_rows(scored)
        metrics = [m for m in METRIC_LABELS if any(m in overall for *_, overall in rows)]
        lines += [f"### {game}", "", "| run | kind | name | " + " | ".join(METRIC_LABELS[m] for m in metrics) + " |",
                  "|---|---|---|" + "---:|" * len(metrics)]
        lines += [f"| {label} | {kind} | {name} | " + " | ".join(_with_interval(overall.get(m)) for m in metrics) + " |"
                  for label, kind, name, overall in rows]
        lines.append("")
        if metrics:
            plot = plot_methods(game, scored, out / f"saliency_methods_{game}.png")
            lines += [f"![{plot.stem}]({plot.name})", ""]
    return _footnoted(lines)


def faithfulness_section(runs: list[Run]) -> list[str]:
    """Per game, each run's methods from its faithfulness.json: deletion and insertion AUC, randomisation check."""
    lines = ["## Faithfulness to the agent (faithfulness.json)", "",
             "Per method of each run (network/seed), on its first `maps` Atari-HEAD observations: the area under "
             "the policy's probability of its action as the pixels are blurred (deletion) or restored from the "
             "blurred observation (insertion) in the map's order, most salient first, with its 95% bootstrap "
             "interval over maps (a faithful map: low deletion, high insertion AUC); and the mean Spearman "
             "correlation of the maps with those of the network once every layer is re-initialised. A method "
             "whose correlation stays above the threshold barely depends on the weights and is flagged.", ""]
    games = sorted({r.game for r in runs if r.faithfulness})
    if not games:
        return lines + [f"{MISSING} (no run has a faithfulness.json)"]
    for game in games:
        lines += [f"### {game}", "", "| run | method | maps | deletion AUC ↓ | insertion AUC ↑ | "
                  "Spearman, all layers randomised | flagged |", "|---|---|---:|---:|---:|---:|---|"]
        for run in (r for r in runs if r.game == game and r.faithfulness):
            summary = run.faithfulness
            for name, result in summary["methods"].items():
                flagged = ("not run" if result["flagged"] is None
                           else f"yes (> {summary['threshold']:g})" if result["flagged"] else "no")
                spearman = (MISSING if result["spearman"] is None else f"{result['spearman']:.3f}"
                            if math.isfinite(result["spearman"]) else f"{MISSING} {NOT_FINITE}")
                lines.append(f"| {run.network}/{run.seed} | {name} | {summary['maps']} | "
                             f"{_with_interval(result['deletion_auc'])} | {_with_interval(result['insertion_auc'])} | "
                             f"{spearman} | {flagged} |")
        lines.append("")
    return _footnoted(lines)


def aggregate_section(groups: dict[tuple[str, str], list[Run]], out: Path) -> list[str]:
    """Markdown of the rliable aggregates (scores and saliency) across games; writes their plots into ``out``."""
    from fl_saliency.report import aggregate as agg

    score_cells = {key: [r.mean_score for r in group if r.mean_score is not None] for key, group in groups.items()}
    normalised, unknown = agg.normalised_score_cells(score_cells)
    matrices = agg.build_matrices(normalised)
    lines = ["## Aggregates across games (rliable)", "",
             "Human-normalised scores, (score - random) / (human - random), with the random and human scores of "
             "Mnih et al. 2015 / Wang et al. 2016 as used by Agarwal et al. 2021 (fl_saliency/report/atari_scores.py); "
             f"95% stratified bootstrap intervals ({agg.REPS} resamples of the runs within each game, seed {agg.SEED}). "
             f"An interval needs at least {agg.MIN_RUNS} runs of every game; with fewer the point estimate stands alone.",
             ""]
    if unknown:
        lines += [f"Left out (no random and human scores): {', '.join(unknown)}.", ""]
    if not matrices:
        return lines + [f"{MISSING} (no evaluated run)"]
    estimates = agg.aggregates(matrices)
    lines += ["| network | games | runs per game | " + " | ".join(agg.SCORE_AGGREGATES) + " | note |",
              "|---|---|---:|" + "---:|" * len(agg.SCORE_AGGREGATES) + "---|"]
    for network, matrix in matrices.items():
        lines.append(f"| {network} | {', '.join(matrix.games)} | {matrix.scores.shape[0]} | "
                     + " | ".join(_estimate(estimates[network][name]) for name in agg.SCORE_AGGREGATES)
                     + f" | {matrix.note} |")
    plots = [agg.plot_aggregates(estimates, "human-normalised score", out / "aggregates.png"),
             agg.plot_profiles(agg.performance_profiles(matrices), out / "performance_profiles.png")]
    improvements = agg.improvement_over(matrices)
    if improvements:
        lines += ["", f"### Probability of improvement over {agg.BASELINE}", "",
                  f"P(a run of the network scores above a run of {agg.BASELINE} on the same game), averaged over "
                  "the games both played.", "", f"| network | games | P(network > {agg.BASELINE}) |", "|---|---|---:|"]
        lines += [f"| {network} | {', '.join(games)} | {_estimate(estimate)} |"
                  for network, (games, estimate) in improvements.items()]
    lines += ["", "### Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    lines += ["", "## Saliency aggregates across games (rliable)", "",
              "Per run, the mean of each metric over every scored map; aggregated over runs and games as above "
              "(higher NSS and sAUC, lower KL: closer to the gaze).", ""]
    scored = False
    for metric in SALIENCY_METRICS:
        cells = {key: [r.saliency[metric] for r in group if metric in r.saliency] for key, group in groups.items()}
        metric_matrices = agg.build_matrices(cells)
        if not metric_matrices:
            continue
        scored = True
        metric_estimates = agg.aggregates(metric_matrices, agg.SALIENCY_AGGREGATES)
        lines += [f"| {metric} | games | runs per game | " + " | ".join(agg.SALIENCY_AGGREGATES) + " | note |",
                  "|---|---|---:|" + "---:|" * len(agg.SALIENCY_AGGREGATES) + "---|"]
        for network, matrix in metric_matrices.items():
            lines.append(f"| {network} | {', '.join(matrix.games)} | {matrix.scores.shape[0]} | "
                         + " | ".join(_estimate(metric_estimates[network][n]) for n in agg.SALIENCY_AGGREGATES)
                         + f" | {matrix.note} |")
        plot = agg.plot_aggregates(metric_estimates, metric, out / f"saliency_{metric}.png")
        lines += ["", f"![{plot.stem}]({plot.name})", ""]
    return lines if scored else lines + [f"{MISSING} (no scored run)"]


def sweep_section(root: Path, problems: list[str], echo=print) -> list[str]:
    """The totals of the sweep's manifest (sweep.json), if the sweep command wrote one; an unreadable one is
    echoed and added to ``problems``."""
    from fl_saliency.sweep.storage import Storage
    from fl_saliency.sweep.manifest import read_manifest, totals

    try:
        manifest = read_manifest(Storage(root))
        if manifest is None:
            return []
        t = totals(manifest["jobs"])
    except (FlSaliencyError, AttributeError, KeyError, TypeError) as exc:
        problem = str(exc) if isinstance(exc, FlSaliencyError) else (
            f"{root / 'sweep.json'}: not a sweep manifest ({type(exc).__name__}: {exc})")
        echo(f"unreadable, shown as missing: {problem}")
        problems.append(problem)
        return []
    status = ", ".join(f"{n} {s}" for s, n in t["by_status"].items())
    speed = _fmt(t["agent_steps_per_s"])
    return ["## Sweep (sweep.json)", "", "| jobs | status | job hours | attempts | nodes | agent steps | "
            "training agent steps/s |", "|---:|---|---:|---:|---:|---:|---:|",
            f"| {t['jobs']} | {status} | {t['job_hours']:.3f} | {t['attempts']} | {len(t['nodes'])} | "
            f"{t['agent_steps']} | {speed} |", ""]


def require_report_extra(what: str = "fl-saliency report") -> None:
    """The one line naming the extra to install when the report's plots, aggregates or storage are missing."""
    require_extra("report", what, "matplotlib", "rliable", "pyarrow")


def report_location(location: str, out: Path | None = None, echo=print) -> str:
    """``write_report`` for a sweep folder or a storage URI; returns where report.md went.

    A storage's runs are copied to a temporary folder (checkpoints, weights and videos left behind) and the report
    is uploaded into the storage, unless ``out`` names a local folder for it.
    """
    from fl_saliency.common.io import is_uri
    from fl_saliency.sweep.storage import Storage

    require_report_extra()
    if not is_uri(location):
        return str(write_report(Path(location), out, echo))
    storage = Storage(location)
    with tempfile.TemporaryDirectory(prefix="fl-saliency-report.") as tmp:
        local = Path(tmp) / "sweep"
        if not storage.download("", local, skip=(rundir.CHECKPOINT_FILE, rundir.MODEL_FILE, "*.mkv", "*.mp4")):
            raise FlSaliencyError(f"sweep storage {location} is empty or does not exist")
        if out is not None:
            return str(write_report(local, out, echo, title=location))
        written = Path(tmp) / "report"
        write_report(local, written, echo, title=location)
        storage.upload(written, "", mirror=False)
    return storage.uri("report.md")


def write_report(root: Path, out: Path | None = None, echo=print, title: str | None = None) -> Path:
    """Write ``report.md``, ``report.html`` and the PNG plots into ``out`` (the sweep folder by default).

    Each unreadable file is echoed in one line and listed in the report; the rest is reported.
    """
    from fl_saliency.agents.networks import ActorCritic, parameter_count
    from fl_saliency.report.html import write_html

    require_report_extra()
    runs = read_sweep(root)
    out = ensure_output_dir(out or root)
    problems = [problem for run in runs for problem in run.problems]
    for problem in problems:
        echo(f"unreadable, shown as missing: {problem}")
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.game, run.network), []).append(run)
    lines = [f"# fl-saliency report: {title or root}", "",
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
    lines += [""] + methods_section(runs, out)
    lines += [""] + faithfulness_section(runs)
    lines += [""] + aggregate_section(groups, out)
    lines += [""] + sweep_section(root, problems, echo)
    if problems:
        lines += ["", "## Unreadable files (shown as missing above)", ""] + [f"- {problem}" for problem in problems]
    path = out / "report.md"
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    write_html(lines, runs, out, echo)
    return path
