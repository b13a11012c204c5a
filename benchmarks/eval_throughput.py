"""Evaluation throughput and perception-video memory, measured side by side in one run.

1. Agent steps per second of the evaluation loop with 16 environments for cnn, cnn_sparse_fls
   and cnn_dense_fls (randomly initialised), against the same 16 environments alone with random
   actions; target >= 70% of the env-only rate for the sparse networks.
2. Peak RSS of recording a 5,000-step and a 20,000-step perception video (4 environments
   tiled, raw and processed observations): they should differ by under 100 MB.

    .venv/bin/python benchmarks/eval_throughput.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from env_rate import agent_steps_per_second

from fl_saliency.agents.checkpoint import save_config, save_model
from fl_saliency.envs import make_vec_env
from fl_saliency.evaluation.evaluate import EvalSettings, evaluate
from fl_saliency.agents.networks import ActorCritic

ENV = "BreakoutNoFrameskip-v4"


def inference_rate(network: str, batch: int) -> float:
    """Samples per second of the network's forward pass alone on one thread, as evaluation runs it."""
    model = ActorCritic(network, 4).eval()
    obs = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.no_grad():
        for _ in range(5):
            model(obs)
        t = time.perf_counter()
        for _ in range(100):
            model(obs)
        rate = 100 * batch / (time.perf_counter() - t)
    torch.set_num_threads(previous)
    return rate


def eval_rate(network: str, num_env: int, max_eplen: int, tmp: Path, workers: int | None, precision: str = "fp32") -> float:
    folder = tmp / f"{network}-{precision}"
    torch.manual_seed(0)
    save_model(ActorCritic(network, 4), folder / "model.pkl")
    save_config({"network": network, "env_name": ENV}, folder / "config.json")
    summary = evaluate(EvalSettings(experiment_dir=folder, output_dir=folder / "eval", num_env=num_env,
                                    evals_per_env=1, max_eplen=max_eplen, env_workers=workers, precision=precision,
                                    device="cpu"), echo=lambda s: None)
    return summary["agent_steps"] * num_env / summary["seconds"]


def record(steps: int) -> None:
    """Child process: record a video of ``steps`` steps of 4 envs from synthetic frames, print peak RSS in MB."""
    from fl_saliency.agents.networks import SPARSE_GEOMETRY
    from fl_saliency.evaluation.perception_video import PerceptionRecorder

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = PerceptionRecorder(Path(tmp) / "perception.mkv", SPARSE_GEOMETRY, [0, 1, 2, 3], raw=True, processed=True)
        rgb = rng.integers(0, 256, (4, 210, 160, 3), dtype=np.uint8)
        obs = rng.integers(0, 256, (4, 4, 84, 84), dtype=np.uint8)
        for t in range(steps):
            rgb[:, t % 210] = t % 256  # moving content, so frames differ
            recorder.add(torch.rand(4, 7, 7), obs, rgb, np.zeros(4, bool))
        recorder.finish()
    print(json.dumps({"steps": steps, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-env", type=int, default=16)
    parser.add_argument("--max-eplen", type=int, default=400)
    parser.add_argument("--env-workers", type=int, help="env processes (default: one per CPU core)")
    parser.add_argument("--record", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-video", action="store_true")
    args = parser.parse_args()
    if args.record:
        record(args.record)
        return

    with tempfile.TemporaryDirectory() as tmp:
        env_rate = agent_steps_per_second(make_vec_env(ENV, args.num_env, seed=1000, workers=args.env_workers), 300)
        rates = {network: eval_rate(network, args.num_env, args.max_eplen, Path(tmp), args.env_workers)
                 for network in ("cnn", "cnn_sparse_fls")}
        # The dense networks cost ~200x more per step on a CPU: a short evaluation shows their rate.
        for network in ("cnn", "cnn_sparse_fls"):
            rates[f"{network}, --precision bf16"] = eval_rate(network, args.num_env, args.max_eplen, Path(tmp),
                                                               args.env_workers, "bf16")
        inference = {network: inference_rate(network, (args.num_env + 1) // 2) for network in ("cnn", "cnn_sparse_fls")}
        rates["cnn_dense_fls"] = eval_rate("cnn_dense_fls", args.num_env, 20, Path(tmp), args.env_workers)
    print(f"{args.num_env} envs, {ENV}")
    print(f"{'environments alone, random actions':<50} {env_rate:9.1f} steps/s")
    for network, rate in rates.items():
        print(f"{'evaluation, ' + network:<50} {rate:9.1f} steps/s   {rate / env_rate:5.2f} of env-only")
    print("target: >= 0.70 of env-only for the sparse networks")
    # The environments alone keep every core busy, so the network's work cannot hide behind them:
    # even with perfect overlap, a step costs the env's share of all cores plus one inference.
    cores = len(os.sched_getaffinity(0))
    print(f"bound with perfect overlap on {cores} cores: 1 / (1/env + 1/(cores x one-thread inference of a group))")
    for network in ("cnn", "cnn_sparse_fls"):
        bound = 1.0 / (1.0 / env_rate + 1.0 / (cores * inference[network]))
        print(f"  {network:<16} inference {inference[network]:7.1f} samples/s/thread -> bound {bound:7.1f} steps/s "
              f"= {bound / env_rate:.2f} of env-only; evaluation reached {rates[network] / bound:.2f} of it")

    if not args.skip_video:
        peaks = {}
        for steps in (5_000, 20_000):
            out = subprocess.run([sys.executable, __file__, "--record", str(steps)], capture_output=True, text=True,
                                 check=True).stdout
            peaks[steps] = json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]
            print(f"perception video, {steps:>6} steps x 4 envs: peak RSS {peaks[steps]:7.1f} MB")
        print(f"difference: {peaks[20_000] - peaks[5_000]:.1f} MB (target < 100 MB)")


if __name__ == "__main__":
    main()
