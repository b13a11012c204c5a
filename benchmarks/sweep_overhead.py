"""Ray's overhead per sweep job: 4 tiny jobs as a local Ray sweep against the same jobs run one after another.

Each job trains a network for 2 tiny updates and evaluates it (1 env, 1 game cut at 30 steps).
On a 2-core machine Ray runs at most 1-2 jobs at once, so the sweep gains little from
parallelism and the difference per job is mostly Ray's start-up and scheduling cost.

    .venv/bin/python benchmarks/sweep_overhead.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from fl_saliency.ppo import PPOConfig
from fl_saliency.sweep import plan, run_job, sweep

TINY = PPOConfig(num_envs=2, nsteps=16, nminibatches=2, noptepochs=1)


def jobs(root: Path):
    return plan(["Breakout"], ["cnn", "cnn_sparse_fls"], [1, 2], 2 * TINY.batch_size, root, ppo=TINY,
                evaluate=(1, 1), max_eplen=30, device="cpu")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sequential = jobs(tmp / "sequential")
        t = time.perf_counter()
        for job in sequential:
            assert run_job(job)["status"] == "done"
        t_sequential = time.perf_counter() - t

        t = time.perf_counter()
        results = sweep(jobs(tmp / "ray"), progress=False, echo=lambda s: None)
        t_ray = time.perf_counter() - t
        assert all(r["status"] == "done" for r in results)
    n = len(sequential)
    print(f"{n} tiny jobs (train 2 updates + evaluate): one after another {t_sequential:.1f} s, "
          f"local Ray sweep {t_ray:.1f} s (Ray start-up included)")
    print(f"Ray overhead per job: {(t_ray - t_sequential) / n:+.1f} s "
          f"(sequential {t_sequential / n:.1f} s per job)")


if __name__ == "__main__":
    main()
