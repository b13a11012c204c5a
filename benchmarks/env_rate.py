"""The benchmarks' one measure of environments alone: agent steps per second with random actions."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class EnvRate:
    wall: float  # agent steps per second
    cpu: float  # agent steps per CPU second of the driving process and the ``worker_pids`` together


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (Linux /proc)."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_env_rate(env, steps: int, warmup: int = 0, seed: int = 0,
                     worker_pids: Callable[[object], list[int]] = lambda env: []) -> EnvRate:
    """Reset, ``warmup`` untimed steps, then ``steps`` timed vector steps of uniformly random
    actions (agent steps = vector steps x num_envs); closes the env. The CPU rate counts the
    CPU time of this process and of ``worker_pids(env)``: unlike the wall rate, it does not
    depend on what else the machine runs."""
    rng = np.random.default_rng(seed)
    try:
        env.reset()
        for _ in range(warmup):
            env.step(rng.integers(0, env.n_actions, env.num_envs))
        pids = worker_pids(env)
        wall, cpu = time.perf_counter(), time.process_time() + _cpu_seconds(pids)
        for _ in range(steps):
            env.step(rng.integers(0, env.n_actions, env.num_envs))
        wall, cpu = time.perf_counter() - wall, time.process_time() + _cpu_seconds(pids) - cpu
        return EnvRate(steps * env.num_envs / wall, steps * env.num_envs / cpu)
    finally:
        env.close()


def agent_steps_per_second(env, steps: int, warmup: int = 0, seed: int = 0) -> float:
    return measure_env_rate(env, steps, warmup, seed).wall
