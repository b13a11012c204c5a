"""Agent steps per second of the env backends and vectorisers, random actions, measured in the same run.

    python benchmarks/env_throughput.py [--env-name Breakout] [--num-env 8] [--steps 2000]

``baselines`` is BaselinesVecEnv with its default worker processes (one per CPU core, each
stepping a block of environments), ``baselines, 1 env/process`` the same with one process per
environment, ``gymnasium AsyncVectorEnv`` the same chain in gymnasium's vectoriser (one process
per environment, shared memory, workers at the same niceness) with the same frame stacking, ``ale-vector`` is AleVectorEnv
(ale-py's C++ threads). Agent steps = vector steps x num_env. The rows alternate ``--repeats``
times and the medians are compared, which damps the noise of a shared machine; the agent steps
per CPU second (all processes of the row together) do not depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import functools
import os

import numpy as np
from env_rate import measure_env_rate
from gymnasium.vector import AsyncVectorEnv, AutoresetMode

from fl_saliency.envs.ale_vector import AleVectorEnv
from fl_saliency.envs.baselines import BaselinesVecEnv
from fl_saliency.envs.chain import make_atari_env
from fl_saliency.envs.frame_stack import FrameStacker
from fl_saliency.envs.pool import WORKER_NICENESS
from fl_saliency.envs.games import num_actions


def _niced_chain(env_name: str):
    os.nice(WORKER_NICENESS)  # in the worker process, as pool.py's workers
    return make_atari_env(env_name)


class GymAsyncVecEnv:
    """The chain in gymnasium's AsyncVectorEnv, stacked as ours (the alternative to pool.py)."""

    def __init__(self, env_name: str, num_envs: int, seed: int):
        self.envs = AsyncVectorEnv([functools.partial(_niced_chain, env_name)] * num_envs, shared_memory=True,
                                   autoreset_mode=AutoresetMode.SAME_STEP)
        self.num_envs, self.n_actions, self.seed = num_envs, num_actions(env_name), seed
        self.stacker = FrameStacker(num_envs)

    def reset(self):
        return self.stacker.reset(self.envs.reset(seed=self.seed)[0])

    def step(self, actions):
        frames, rewards, terminated, truncated, infos = self.envs.step(actions)
        dones = terminated | truncated
        return self.stacker.push(frames, dones), rewards.astype(np.float32), dones, infos

    def close(self):
        self.envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-name", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--num-env", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000, help="vector steps timed per row and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(f"{args.env_name}, {args.num_env} envs, {args.steps} vector steps x {args.repeats}, {os.cpu_count()} CPU cores")
    pool_pids = lambda env: [w.process.pid for w in env.pool.workers]
    makers = {  # name: (make, its worker processes)
        "baselines": (lambda: BaselinesVecEnv(args.env_name, args.num_env, seed=0), pool_pids),
        "baselines, 1 env/process": (lambda: BaselinesVecEnv(args.env_name, args.num_env, seed=0,
                                                             workers=args.num_env), pool_pids),
        "gymnasium AsyncVectorEnv": (lambda: GymAsyncVecEnv(args.env_name, args.num_env, seed=0),
                                     lambda env: [p.pid for p in env.envs.processes]),
        "ale-vector": (lambda: AleVectorEnv(args.env_name, args.num_env, seed=0), lambda env: []),
    }
    rates: dict[str, list] = {name: [] for name in makers}
    for _ in range(args.repeats):
        for name, (make, pids) in makers.items():
            rates[name].append(measure_env_rate(make(), args.steps, warmup=100, worker_pids=pids))
    wall = {name: np.median([r.wall for r in values]) for name, values in rates.items()}
    cpu = {name: np.median([r.cpu for r in values]) for name, values in rates.items()}
    for name, values in rates.items():
        print(f"{name:>24}: median {wall[name]:,.0f} agent steps/s (runs: {', '.join(f'{r.wall:,.0f}' for r in values)}); "
              f"{cpu[name]:,.0f} agent steps per CPU second")
    for measure, median in (("wall", wall), ("CPU", cpu)):
        print(f"{measure} ratios: ale-vector / baselines {median['ale-vector'] / median['baselines']:.2f}x; "
              f"baselines / baselines 1 env/process {median['baselines'] / median['baselines, 1 env/process']:.2f}x; "
              f"baselines / gymnasium AsyncVectorEnv {median['baselines'] / median['gymnasium AsyncVectorEnv']:.2f}x")

if __name__ == "__main__":
    main()
