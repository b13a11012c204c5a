"""Learning speed on Breakout: our PPO2 (cnn, cnn_sparse_fls) against Stable-Baselines3's PPO (CnnPolicy, cnn).

All three train for ``--steps`` agent steps (default 500k) with the Baselines Atari settings on
the same environment chain (wrappers.py), one seed each, in parallel processes; then the mean
score of the last 100 games (eprewmean) is printed every 50k steps side by side. Long: run it
in the background. ``--runs`` picks the runs (``cnn_bf16``: our cnn with ``--precision bf16``);
finished runs in ``--out`` are kept and unfinished ones resume.

    .venv/bin/pip install -e ".[bench]" && .venv/bin/python benchmarks/learning.py --out /tmp/learning
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

from fl_saliency.ppo import PPOConfig

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


def finished(folder: Path, steps: int) -> bool:
    from fl_saliency.train import load_checkpoint

    checkpoint = folder / "checkpoint.pt"
    return checkpoint.exists() and load_checkpoint(checkpoint)["update"] >= steps // PPOConfig().batch_size


def curve(progress: Path) -> tuple[np.ndarray, np.ndarray]:
    if not progress.exists():
        return np.zeros(0), np.zeros(0)
    with open(progress) as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["total_timesteps"]) for r in rows]), np.array([float(r["eprewmean"]) for r in rows])


RUNS = {  # name: (network, precision) of our runs; "sb3" is SB3's PPO with cnn
    "cnn": ("cnn", "fp32"),
    "cnn_sparse_fls": ("cnn_sparse_fls", "fp32"),
    "cnn_bf16": ("cnn", "bf16"),
    "sb3": None,
}


def progress_file(out: Path, run: str) -> Path:
    return out / "sb3_cnn" / "progress.csv" if run == "sb3" else out / f"ours_{run}" / "logs" / "progress.csv"


def start(run: str, args: argparse.Namespace):
    """The process of one run, or None when it already finished."""
    if run == "sb3":
        if progress_file(args.out, run).exists():
            return None
        return subprocess.Popen([sys.executable, __file__, "--out", str(args.out), "--steps", str(args.steps),
                                 "--seed", str(args.seed), "--sb3-worker"],
                                stdout=subprocess.DEVNULL, stderr=open(args.out / "sb3.err", "w"))
    network, precision = RUNS[run]
    folder = args.out / f"ours_{run}"
    if finished(folder, args.steps):
        return None
    resume = ["--resume"] if (folder / "checkpoint.pt").exists() else ["--force"]
    return subprocess.Popen(
        [sys.executable, "-m", "fl_saliency.cli", "train", "--output-dir", str(folder), "--network", network,
         "--env-name", ENV, "--train-seed", str(args.seed), "--num-timesteps", str(args.steps), "--device", "cpu",
         "--log-interval", "10", "--precision", precision, *resume],
        stdout=subprocess.DEVNULL, stderr=open(args.out / f"ours_{run}.err", "w"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=int, default=50_000)
    parser.add_argument("--runs", default="cnn,cnn_sparse_fls,sb3",
                        help=f"comma-separated, of: {', '.join(RUNS)} (cnn_bf16: cnn with --precision bf16)")
    parser.add_argument("--report-only", action="store_true", help="print the table from the runs so far")
    parser.add_argument("--sb3-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_worker:
        train_sb3(args.out / "sb3_cnn", args.steps, args.seed)
        return
    runs = args.runs.split(",")
    if unknown := set(runs) - set(RUNS):
        parser.error(f"unknown runs {sorted(unknown)}; choose from {', '.join(RUNS)}")

    args.out.mkdir(parents=True, exist_ok=True)
    procs = {} if args.report_only else {run: start(run, args) for run in runs}
    for run, proc in procs.items():
        if proc is not None and proc.wait() != 0:
            print(f"{run} failed: see {args.out}")

    titles = {"cnn": "ours cnn", "cnn_sparse_fls": "ours cnn_sparse_fls", "cnn_bf16": "ours cnn bf16", "sb3": "SB3 PPO cnn"}
    curves = {titles[run]: curve(progress_file(args.out, run)) for run in runs}
    print(f"Breakout, seed {args.seed}: eprewmean (mean score of the last 100 games) against agent steps")
    print(f"{'steps':>8} " + " ".join(f"{name:>20}" for name in curves))
    batch = PPOConfig().batch_size
    final = args.steps // batch * batch  # where our last update ends
    for step in range(args.every, args.steps + 1, args.every):
        cells = []
        for steps, values in curves.values():
            before = np.flatnonzero(steps <= step)
            reached = len(steps) and steps[-1] >= min(step, final)
            cells.append(f"{values[before[-1]]:20.2f}" if len(before) and reached else f"{'—':>20}")
        print(f"{step:>8} " + " ".join(cells))
    if "ours cnn" not in curves or "SB3 PPO cnn" not in curves or any(len(s) == 0 for s, _ in curves.values()):
        return
    reached = min(steps[-1] for steps, _ in curves.values())
    at = {name: values[np.flatnonzero(steps <= reached)[-1]] for name, (steps, values) in curves.items()}
    print(f"at {int(reached)} steps (the furthest all runs reached): ours cnn / SB3 cnn = "
          f"{at['ours cnn'] / at['SB3 PPO cnn']:.2f} (target >= 1, one seed)")


if __name__ == "__main__":
    main()
