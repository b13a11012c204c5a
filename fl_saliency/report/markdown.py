"""report.md: the report's sections of a sweep folder, and write_report (report.md, report.html, the plots).

Each unreadable file of a run is echoed in one line and listed in the report; the rest is reported.
"""

from __future__ import annotations

import math
from pathlib import Path

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import atomic_write, ensure_output_dir
from fl_saliency.common.rundir import SALIENCY_METRICS
from fl_saliency.report import require_report_extra
from fl_saliency.report.plots import plot_aggregates, plot_curves, plot_methods, plot_profiles
from fl_saliency.report.runs import Run, read_sweep, scored_rows
from fl_saliency.report.tables import (METRIC_LABELS, MISSING, NOT_FINITE, fmt, fmt_estimate, footnoted,
                                       parameter_table, saliency_table, score_table, with_interval)


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
        rows = scored_rows(scored)
        metrics = [m for m in METRIC_LABELS if any(m in overall for *_, overall in rows)]
        lines += [f"### {game}", "", "| run | kind | name | " + " | ".join(METRIC_LABELS[m] for m in metrics) + " |",
                  "|---|---|---|" + "---:|" * len(metrics)]
        lines += [f"| {label} | {kind} | {name} | " + " | ".join(with_interval(overall.get(m)) for m in metrics) + " |"
                  for label, kind, name, overall in rows]
        lines.append("")
        if metrics:
            plot = plot_methods(game, scored, out / f"saliency_methods_{game}.png")
            lines += [f"![{plot.stem}]({plot.name})", ""]
    return footnoted(lines)


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
                             f"{with_interval(result['deletion_auc'])} | {with_interval(result['insertion_auc'])} | "
                             f"{spearman} | {flagged} |")
        lines.append("")
    return footnoted(lines)


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
                     + " | ".join(fmt_estimate(estimates[network][name]) for name in agg.SCORE_AGGREGATES)
                     + f" | {matrix.note} |")
    plots = [plot_aggregates(estimates, "human-normalised score", out / "aggregates.png"),
             plot_profiles(agg.performance_profiles(matrices), out / "performance_profiles.png")]
    improvements = agg.improvement_over(matrices)
    if improvements:
        lines += ["", f"### Probability of improvement over {agg.BASELINE}", "",
                  f"P(a run of the network scores above a run of {agg.BASELINE} on the same game), averaged over "
                  "the games both played.", "", f"| network | games | P(network > {agg.BASELINE}) |", "|---|---|---:|"]
        lines += [f"| {network} | {', '.join(games)} | {fmt_estimate(estimate)} |"
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
                         + " | ".join(fmt_estimate(metric_estimates[network][n]) for n in agg.SALIENCY_AGGREGATES)
                         + f" | {matrix.note} |")
        plot = plot_aggregates(metric_estimates, metric, out / f"saliency_{metric}.png")
        lines += ["", f"![{plot.stem}]({plot.name})", ""]
    return lines if scored else lines + [f"{MISSING} (no scored run)"]


def sweep_section(root: Path, problems: list[str], echo=print) -> list[str]:
    """The totals of the sweep's manifest (sweep.json), if the sweep command wrote one; an unreadable one is
    echoed and added to ``problems``."""
    from fl_saliency.sweep.storage import Storage
    from fl_saliency.sweep.manifest import MANIFEST_FILE, read_manifest, totals

    try:
        manifest = read_manifest(Storage(root))
        if manifest is None:
            return []
        t = totals(manifest["jobs"])
    except (FlSaliencyError, AttributeError, KeyError, TypeError) as exc:
        problem = str(exc) if isinstance(exc, FlSaliencyError) else (
            f"{root / MANIFEST_FILE}: not a sweep manifest ({type(exc).__name__}: {exc})")
        echo(f"unreadable, shown as missing: {problem}")
        problems.append(problem)
        return []
    status = ", ".join(f"{n} {s}" for s, n in t["by_status"].items())
    speed = fmt(t["agent_steps_per_s"])
    return ["## Sweep (sweep.json)", "", "| jobs | status | job hours | attempts | nodes | agent steps | "
            "training agent steps/s |", "|---:|---|---:|---:|---:|---:|---:|",
            f"| {t['jobs']} | {status} | {t['job_hours']:.3f} | {t['attempts']} | {len(t['nodes'])} | "
            f"{t['agent_steps']} | {speed} |", ""]


def write_report(root: Path, out: Path | None = None, echo=print, title: str | None = None) -> Path:
    """Write ``report.md``, ``report.html`` and the PNG plots into ``out`` (the sweep folder by default).

    Each unreadable file is echoed in one line and listed in the report; the rest is reported.
    """
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
             f"{MISSING} marks what a run does not have (not evaluated, not scored).", ""]
    lines += score_table(groups) + [""] + saliency_table(groups)
    plots = plot_curves(runs, out)
    lines += ["", "## Learning curves (paper's Fig. 3)", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots] or [f"{MISSING} (no run has a learning curve)"]
    lines += [""] + parameter_table(sorted({n for _, n in groups}))
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
