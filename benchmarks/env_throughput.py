"""Agent steps per second of the two env backends, random actions, measured in the same run.

    python benchmarks/env_throughput.py [--env-name Breakout] [--num-env 8] [--steps 2000]

``baselines`` is BaselinesVecEnv with its default worker processes (one per CPU core, each
stepping a block of environments), ``baselines, 1 env/process`` the same with one process per
environment (as gymnasium's AsyncVectorEnv runs them), ``ale-vector`` is AleVectorEnv (ale-py's
C++ threads). Agent steps = vector steps x num_env.
The backends alternate ``--repeats`` times and the medians are compared, which damps the noise
of a shared machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from fl_saliency.ale_vector import AleVectorEnv
from fl_saliency.envs import BaselinesVecEnv


def agent_steps_per_second(env, steps: int, warmup: int = 100, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    env.reset()
    for _ in range(warmup):
        env.step(rng.integers(0, env.n_actions, env.num_envs))
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(0, env.n_actions, env.num_envs))
    rate = steps * env.num_envs / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-name", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--num-env", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000, help="vector steps timed per backend and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(f"{args.env_name}, {args.num_env} envs, {args.steps} vector steps x {args.repeats}, {os.cpu_count()} CPU cores")
    rates: dict[str, list[float]] = {"baselines": [], "baselines, 1 env/process": [], "ale-vector": []}
    for _ in range(args.repeats):
        rates["baselines"].append(agent_steps_per_second(
            BaselinesVecEnv(args.env_name, args.num_env, seed=0, asynchronous=True), args.steps))
        rates["baselines, 1 env/process"].append(agent_steps_per_second(
            BaselinesVecEnv(args.env_name, args.num_env, seed=0, asynchronous=True, workers=args.num_env), args.steps))
        rates["ale-vector"].append(agent_steps_per_second(AleVectorEnv(args.env_name, args.num_env, seed=0), args.steps))
    for name, values in rates.items():
        print(f"{name:>24}: median {np.median(values):,.0f} agent steps/s  (runs: {', '.join(f'{v:,.0f}' for v in values)})")
    median = {name: np.median(values) for name, values in rates.items()}
    print(f"ratio ale-vector / baselines: {median['ale-vector'] / median['baselines']:.2f}x; "
          f"baselines / baselines 1 env/process: {median['baselines'] / median['baselines, 1 env/process']:.2f}x")


if __name__ == "__main__":
    main()
