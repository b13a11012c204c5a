"""Learning speed on Breakout: our PPO2 (cnn, cnn_sparse_fls) against Stable-Baselines3's PPO (CnnPolicy, cnn).

All three train for ``--steps`` agent steps (default 500k) with the Baselines Atari settings on
the same environment chain (envs/chain.py), in parallel processes, for each of ``--seeds`` in turn
(in ``--out``/seed<N>); then the mean score of the last 100 games (eprewmean) is printed every
50k steps side by side, per seed and averaged over the seeds, and plotted (``--out``/learning.png).
Long: run it in the background. ``--runs`` picks the runs (``cnn_bf16``: our cnn with
``--precision bf16``; ``cnn_sb3_value_loss``: with SB3's value loss; ``cnn_pytorch_eps``: with
PyTorch's Adam eps placement; ``cnn_sb3_choices``: with both, as SB3); finished runs are kept
and unfinished ones resume (SB3's start over).

    .venv/bin/pip install -e ".[bench]" && .venv/bin/python benchmarks/learning.py --out /tmp/learning --seeds 1,2
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fl_saliency.ppo.algorithm import PPOConfig
from fl_saliency.common.rundir import read_progress
from fl_saliency.report.plots import plot_learning_curves

ENV = "BreakoutNoFrameskip-v4"


def train_sb3(out: Path, steps: int, seed: int) -> None:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from sb3_setup import make_sb3_ppo

    torch.set_num_threads(1)

    class Progress(BaseCallback):
        def __init__(self, path):
            super().__init__()
            self.file = open(path, "w", newline="")
            self.writer = csv.writer(self.file)
            self.writer.writerow(["total_timesteps", "eprewmean"])

        def _on_step(self):
            return True

        def _on_rollout_end(self):
            buffer = self.model.ep_info_buffer
            self.writer.writerow([self.num_timesteps, np.mean([e["r"] for e in buffer]) if buffer else "nan"])
            self.file.flush()

    model = make_sb3_ppo(ENV, PPOConfig(), seed, linear_lr=True)
    out.mkdir(parents=True, exist_ok=True)
    model.learn(steps, callback=Progress(out / "progress.csv"))
    model.get_env().close()


def last_checkpoint(folder: Path) -> dict | None:
    from fl_saliency.ppo.train import load_checkpoint

    checkpoint = folder / "checkpoint.pt"
    return load_checkpoint(checkpoint) if checkpoint.exists() else None


def last_update_step(steps: int) -> int:
    """Agent steps when a run of ``steps`` has made its last whole update (where ours stops)."""
    return steps // PPOConfig().batch_size * PPOConfig().batch_size


def finished(folder: Path, steps: int) -> bool:
    checkpoint = last_checkpoint(folder)
    return checkpoint is not None and checkpoint["update"] >= steps // PPOConfig().batch_size


def curve(progress: Path) -> tuple[np.ndarray, np.ndarray]:
    return read_progress(progress) if progress.exists() else (np.zeros(0), np.zeros(0))


def run_curve(folder: Path, run: str) -> tuple[np.ndarray, np.ndarray]:
    """The logged eprewmean; for ours, plus the last checkpoint's when it is newer than the last log row
    (runs made before the last update was always logged)."""
    steps, values = curve(progress_file(folder, run))
    checkpoint = None if run == "sb3" else last_checkpoint(folder / f"ours_{run}")
    if checkpoint is not None and checkpoint["episodes"]["rewards"]:
        at = checkpoint["update"] * PPOConfig().batch_size
        if not len(steps) or at > steps[-1]:
            steps, values = np.append(steps, at), np.append(values, np.mean(checkpoint["episodes"]["rewards"]))
    return steps, values


SB3_VALUE_LOSS = ["--vf-coef", "1.0", "--no-value-clip"]
RUNS = {  # name: (network, extra train flags) of our runs; "sb3" is SB3's PPO with cnn
    "cnn": ("cnn", []),
    "cnn_sparse_fls": ("cnn_sparse_fls", []),
    "cnn_bf16": ("cnn", ["--precision", "bf16"]),
    # SB3's value loss: mean squared error, unclipped, weighted 0.5 (ours halves the squared error: vf-coef 1.0)
    "cnn_sb3_value_loss": ("cnn", SB3_VALUE_LOSS),
    "cnn_pytorch_eps": ("cnn", ["--adam-eps-placement", "pytorch"]),
    # all of SB3's choices where they differ from Baselines: then our update is SB3's (sb3_update_match.py)
    "cnn_sb3_choices": ("cnn", [*SB3_VALUE_LOSS, "--adam-eps-placement", "pytorch"]),
    "sb3": None,
}


def progress_file(out: Path, run: str) -> Path:
    return out / "sb3_cnn" / "progress.csv" if run == "sb3" else out / f"ours_{run}" / "logs" / "progress.csv"


def start(run: str, folder: Path, seed: int, steps: int):
    """The process of one run in ``folder``, or None when it already finished. SB3 cannot resume: an
    unfinished SB3 run starts over; ours resume from their last checkpoint."""
    if run == "sb3":
        logged, _ = curve(progress_file(folder, run))
        if len(logged) and logged[-1] >= last_update_step(steps):
            return None
        return subprocess.Popen([sys.executable, __file__, "--out", str(folder), "--steps", str(steps),
                                 "--sb3-worker", str(seed)],
                                stdout=subprocess.DEVNULL, stderr=open(folder / "sb3.err", "w"))
    network, flags = RUNS[run]
    run_folder = folder / f"ours_{run}"
    if finished(run_folder, steps):
        return None
    resume = ["--resume"] if (run_folder / "checkpoint.pt").exists() else ["--force"]
    return subprocess.Popen(
        [sys.executable, "-m", "fl_saliency.cli", "train", "--output-dir", str(run_folder), "--network", network,
         "--env-name", ENV, "--train-seed", str(seed), "--num-timesteps", str(steps), "--device", "cpu",
         "--log-interval", "10", *flags, *resume],
        stdout=subprocess.DEVNULL, stderr=open(folder / f"ours_{run}.err", "w"),
        env={**os.environ, "OMP_NUM_THREADS": "1"})  # the runs share the cores (SB3's runs on one thread too)


TITLES = {"cnn": "ours cnn", "cnn_sparse_fls": "ours cnn_sparse_fls", "cnn_bf16": "ours cnn bf16",
          "cnn_sb3_value_loss": "ours cnn, SB3 vf loss", "cnn_pytorch_eps": "ours cnn, PyTorch eps",
          "cnn_sb3_choices": "ours cnn, SB3 choices",
          "sb3": "SB3 PPO cnn"}


def value_at(curve_: tuple[np.ndarray, np.ndarray], step: int, final: int) -> float:
    """eprewmean logged at or before ``step``; NaN when the run has not reached it (``final``: our last update)."""
    steps, values = curve_
    before = np.flatnonzero(steps <= step)
    reached = len(steps) and steps[-1] >= min(step, final)
    return float(values[before[-1]]) if len(before) and reached else float("nan")


def print_table(title: str, columns: dict[str, list[float]], checkpoints: list[int]) -> None:
    print(title)
    print(f"{'steps':>8} " + " ".join(f"{name:>20}" for name in columns))
    for row, step in enumerate(checkpoints):
        cells = [f"{'—':>20}" if np.isnan(values[row]) else f"{values[row]:20.2f}" for values in columns.values()]
        print(f"{step:>8} " + " ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="one folder per seed is made in it: seed<N>")
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seeds", default="1", help="comma-separated; seeds run one after another")
    parser.add_argument("--every", type=int, default=50_000)
    parser.add_argument("--runs", default="cnn,cnn_sparse_fls,sb3",
                        help=f"comma-separated, of: {', '.join(RUNS)}")
    parser.add_argument("--report-only", action="store_true", help="print the tables from the runs so far")
    parser.add_argument("--sb3-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_worker is not None:
        train_sb3(args.out / "sb3_cnn", args.steps, args.sb3_worker)
        return
    runs = args.runs.split(",")
    if unknown := set(runs) - set(RUNS):
        parser.error(f"unknown runs {sorted(unknown)}; choose from {', '.join(RUNS)}")
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")

    final = last_update_step(args.steps)
    checkpoints = list(range(args.every, args.steps + 1, args.every))
    per_seed, logged = {}, {}
    for seed in seeds:
        folder = args.out / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        procs = {} if args.report_only else {run: start(run, folder, seed, args.steps) for run in runs}
        for run, proc in procs.items():
            if proc is not None and proc.wait() != 0:
                print(f"{run} failed: see {folder}")
        curves = {TITLES[run]: run_curve(folder, run) for run in runs}
        for name, c in curves.items():
            if len(c[0]):
                logged.setdefault(name, []).append(c)
        per_seed[seed] = {name: [value_at(c, step, final) for step in checkpoints] for name, c in curves.items()}
        print_table(f"Breakout, seed {seed}: eprewmean (mean score of the last 100 games) against agent steps",
                    per_seed[seed], checkpoints)
    if logged:
        plot = plot_learning_curves(logged, f"Breakout: mean score of the last 100 games, seed{'s' * (len(seeds) > 1)} "
                                            f"{', '.join(map(str, seeds))}", args.out / "learning.png")
        print(f"curves: {plot}")
    if len(seeds) > 1:
        means = {TITLES[run]: list(np.mean([per_seed[seed][TITLES[run]] for seed in seeds], axis=0)) for run in runs}
        print_table(f"mean over seeds {', '.join(map(str, seeds))} (— where a seed has not reached the row)",
                    means, checkpoints)
    else:
        means = per_seed[seeds[0]]
    sb3 = means.get(TITLES["sb3"])
    compared = [TITLES[run] for run in runs if RUNS[run] and RUNS[run][0] == "cnn"] if sb3 is not None else []
    for name in compared:
        rows = [row for row in range(len(checkpoints)) if not np.isnan(means[name][row]) and not np.isnan(sb3[row])]
        if rows:
            ratios = [means[name][row] / sb3[row] for row in rows]
            area = np.sum([means[name][row] for row in rows]) / np.sum([sb3[row] for row in rows])
            print(f"{name} / SB3 cnn at {checkpoints[rows[-1]]} steps: {ratios[-1]:.2f}; "
                  f"at or above 1 on {sum(r >= 1 for r in ratios)} of {len(rows)} rows; area under the curves: "
                  f"{area:.2f} (target >= 1; {len(seeds)} seed{'s' * (len(seeds) > 1)})")


if __name__ == "__main__":
    main()
