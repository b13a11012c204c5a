"""Learning speed on Breakout: our PPO2 (cnn, cnn_sparse_fls) against Stable-Baselines3's PPO (CnnPolicy, cnn).

All three train for ``--steps`` agent steps (default 500k) with the Baselines Atari settings on
the same environment chain (wrappers.py), one seed each, in parallel processes; then the mean
score of the last 100 games (eprewmean) is printed every 50k steps side by side. Long: run it
in the background. ``--bf16`` adds our cnn trained with ``--precision bf16``; finished runs in
``--out`` are kept, so it can be added to an earlier run's table.

    .venv/bin/pip install -e ".[bench]" && .venv/bin/python benchmarks/learning.py --out /tmp/learning
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

ENV = "BreakoutNoFrameskip-v4"


def train_sb3(out: Path, steps: int, seed: int) -> None:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from fl_saliency.ppo import PPOConfig
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
    from fl_saliency.ppo import PPOConfig
    from fl_saliency.train import load_checkpoint

    checkpoint = folder / "checkpoint.pt"
    return checkpoint.exists() and load_checkpoint(checkpoint)["update"] >= steps // PPOConfig().batch_size


def curve(progress: Path) -> tuple[np.ndarray, np.ndarray]:
    if not progress.exists():
        return np.zeros(0), np.zeros(0)
    with open(progress) as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["total_timesteps"]) for r in rows]), np.array([float(r["eprewmean"]) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=int, default=50_000)
    parser.add_argument("--report-only", action="store_true", help="print the table from the runs so far")
    parser.add_argument("--bf16", action="store_true", help="also train cnn with --precision bf16")
    parser.add_argument("--sb3-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_worker:
        train_sb3(args.out / "sb3_cnn", args.steps, args.seed)
        return

    ours = {"cnn": ("cnn", "fp32"), "cnn_sparse_fls": ("cnn_sparse_fls", "fp32")}
    if args.bf16:
        ours["cnn_bf16"] = ("cnn", "bf16")
    procs = {}
    for name, (network, precision) in {} if args.report_only else ours.items():
        folder = args.out / f"ours_{name}"
        if finished(folder, args.steps):
            continue
        resume = ["--resume"] if (folder / "checkpoint.pt").exists() else []
        procs[f"ours {name}"] = subprocess.Popen(
            [sys.executable, "-m", "fl_saliency.cli", "train", "--output-dir", str(folder), "--network", network,
             "--env-name", ENV, "--train-seed", str(args.seed), "--num-timesteps", str(args.steps),
             "--device", "cpu", "--log-interval", "10", "--precision", precision, *resume, *(["--force"] if not resume else [])],
            stdout=subprocess.DEVNULL, stderr=open(args.out / f"ours_{name}.err", "w"))
    if not args.report_only and not (args.out / "sb3_cnn" / "progress.csv").exists():
        procs["sb3 cnn"] = subprocess.Popen([sys.executable, __file__, "--out", str(args.out), "--steps", str(args.steps),
                                             "--seed", str(args.seed), "--sb3-worker"],
                                            stdout=subprocess.DEVNULL, stderr=open(args.out / "sb3.err", "w"))
    for name, proc in procs.items():
        if proc.wait() != 0:
            print(f"{name} failed: see {args.out}")

    curves = {"ours cnn": curve(args.out / "ours_cnn" / "logs" / "progress.csv"),
              "ours cnn_sparse_fls": curve(args.out / "ours_cnn_sparse_fls" / "logs" / "progress.csv"),
              "SB3 PPO cnn": curve(args.out / "sb3_cnn" / "progress.csv")}
    if args.bf16:
        curves["ours cnn, bf16"] = curve(args.out / "ours_cnn_bf16" / "logs" / "progress.csv")
    print(f"Breakout, seed {args.seed}: eprewmean (mean score of the last 100 games) against agent steps")
    print(f"{'steps':>8} " + " ".join(f"{name:>20}" for name in curves))
    for step in range(args.every, args.steps + 1, args.every):
        cells = []
        for steps, values in curves.values():
            before = np.flatnonzero(steps <= step)
            reached = len(steps) and steps[-1] >= step
            cells.append(f"{values[before[-1]]:20.2f}" if len(before) and reached else f"{'—':>20}")
        print(f"{step:>8} " + " ".join(cells))
    if any(len(steps) == 0 for steps, _ in curves.values()):
        return
    reached = min(steps[-1] for steps, _ in curves.values())
    at = {name: values[np.flatnonzero(steps <= reached)[-1]] for name, (steps, values) in curves.items()}
    print(f"at {int(reached)} steps (the furthest all runs reached): ours cnn / SB3 cnn = "
          f"{at['ours cnn'] / at['SB3 PPO cnn']:.2f} (target >= 1, one seed)")


if __name__ == "__main__":
    main()
