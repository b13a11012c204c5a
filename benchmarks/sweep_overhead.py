"""A sweep's overhead per job, measured side by side in one run: the same 4 small jobs (train 8 tiny updates,
save every 2, evaluate 1 game cut at 30 steps; 1 CPU and 1 env worker each)

1. one after another in this process, into a local folder (no Ray: the baseline);
2. `fl-saliency sweep` on a local single-node Ray, into a local folder;
3. `fl-saliency sweep --address` on a two-node Ray cluster started here (a head and two 1-CPU worker nodes, separate processes and scratch
   folders), into file:// storage: every job downloads its run from the storage and uploads it at each
   checkpoint and stage.

Ray modes run 2 jobs at once (2 CPUs), so their ideal wall time is half the baseline's. The overhead per job
is (wall - baseline / 2) / jobs: the command's start-up (Python, PyTorch, Ray), scheduling, the driver's
events and, for the cluster, the copies to and from the storage. In-task seconds (the stages' own seconds, from
sweep.json) show how much of it is spent inside the jobs.

    .venv/bin/python benchmarks/sweep_overhead.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fl_saliency.ppo.algorithm import PPOConfig  # noqa: E402
from fl_saliency.sweep.grid import SweepSettings, plan, run_job  # noqa: E402
from ray_cluster import start_cluster  # noqa: E402

TINY = PPOConfig(num_envs=2, nsteps=16, nminibatches=2, noptepochs=1)


NETWORKS, SEEDS, UPDATES, SAVE_INTERVAL = ["cnn", "cnn_sparse_fls"], [1, 2], 8, 2


def jobs(root):
    return plan(SweepSettings(games=["Breakout"], networks=NETWORKS, seeds=SEEDS, num_timesteps=UPDATES * TINY.batch_size,
                              output_dir=root, ppo=TINY, save_interval=SAVE_INTERVAL, evaluate=(1, 1), max_eplen=30,
                              cpus_per_job=1, device="cpu"))


def sweep_command(storage: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "fl_saliency.cli", "sweep", "--games", "Breakout", "--networks", ",".join(NETWORKS),
            "--seeds", ",".join(map(str, SEEDS)), "--num-timesteps", str(UPDATES * TINY.batch_size),
            "--num-env", "2", "--nsteps", "16", "--nminibatches", "2", "--noptepochs", "1", "--save-interval",
            str(SAVE_INTERVAL), "--evaluate", "1:1", "--max-eplen", "30", "--cpus-per-job", "1", "--device", "cpu",
            "--output-dir", storage, *args]


def timed_sweep(command: list[str], manifest: Path, env=None) -> tuple[float, dict]:
    t = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    jobs = json.loads(manifest.read_text())["jobs"]
    assert all(entry["status"] == "done" for entry in jobs.values()), jobs
    return wall, jobs


def line(name: str, wall: float, baseline: float, jobs: dict) -> str:
    n = len(jobs)
    in_task = sum(entry["seconds"] for entry in jobs.values()) / n
    nodes = len({entry["node"] for entry in jobs.values()})
    return (f"{name:<40} wall {wall:6.1f} s   in-task {in_task:5.1f} s/job   "
            f"overhead {(wall - baseline / 2) / n:+5.1f} s/job   ({nodes} node{'s' if nodes > 1 else ''})")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        sequential = [run_job(job) for job in jobs(tmp / "sequential")]
        baseline = time.perf_counter() - t
        n = len(sequential)
        print(f"{n} jobs; one after another, no Ray: {baseline:.1f} s ({baseline / n:.1f} s per job)")

        assert all(r["status"] == "done" for r in sequential), sequential

        wall, local = timed_sweep(sweep_command(str(tmp / "local")), tmp / "local" / "sweep.json")
        print(line("local Ray, local folder", wall, baseline, local))

        cluster = start_cluster(tmp / "cluster", worker_cpus=[1, 1])
        try:
            command = sweep_command(f"file://{tmp}/storage", "--address", cluster.address)
            wall, remote = timed_sweep(command, tmp / "storage" / "sweep.json", env=cluster.env)
        finally:
            cluster.stop()
        print(line("two-node cluster, file:// storage", wall, baseline, remote))


if __name__ == "__main__":
    main()
