"""A sweep folder's runs as the report sees them: what each run folder holds, read with common/rundir.py.

A sweep is ``D/<Game>.<network>/<seed>/`` run folders (ours or the paper's released models), or ``D`` itself, a
single ``train`` run. A piece that is missing stays None (shown as missing, never as zero); a file that cannot be
read is one line in the run's ``problems``, and the rest of the run is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fl_saliency.common import rundir
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.rundir import (UnreadableFile, read_benchmark, read_curve, read_faithfulness, read_rewards,
                                       read_saliency)


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
    eval_dir = rundir.eval_folder(folder)
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


def scored_rows(runs: list[Run]) -> list[tuple[str, str, str, dict]]:
    """(run label, kind, name, overall) of each method, then each reference, of each run."""
    return [(f"{run.network}/{run.seed}", kind[:-1], name, overall)
            for run in runs for kind in ("methods", "references") for name, overall in run.benchmark[kind].items()]
