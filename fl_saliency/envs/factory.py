"""The backend factory: a vector environment of either backend, pipelined in two groups or not."""

from __future__ import annotations

from fl_saliency.envs.baselines import BaselinesVecEnv
from fl_saliency.envs.pipelined import PipelinedVecEnv
from fl_saliency.envs.pool import env_workers
from fl_saliency.envs.vec_env import VecEnv, split_evenly
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.envs.games import parse_game
from fl_saliency.envs.protocol import Protocol
from fl_saliency.common.settings import setting

BACKENDS = ("baselines", "ale-vector")


def backend_setting():
    return setting("baselines", choices=BACKENDS,
                   help="baselines: the exact Python wrapper chain; ale-vector: ale-py's faster C++ vector env")


def workers_setting():
    return setting(None, min=1, help="processes stepping the baselines backend's environments, each a block of them "
                                     "(default: one per CPU core)")


def make_vec_env(env_name: str, num_envs: int, seed: int, backend: str = "baselines", max_eplen: int | None = None,
                 keep_rgb: bool = False, asynchronous: bool = True, breakout_infinite: bool = False,
                 workers: int | None = None, protocol: Protocol | None = None) -> VecEnv:
    """A vector environment of ``num_envs`` copies of the game, env ``rank`` seeded ``seed + rank``, under
    ``protocol`` (default: the id's, ``protocol.protocol_of``)."""
    parse_game(env_name)
    if num_envs < 1:
        raise FlSaliencyError(f"--num-env must be at least 1, got {num_envs}")
    if backend == "baselines":
        return BaselinesVecEnv(env_name, num_envs, seed, max_eplen, keep_rgb, asynchronous, breakout_infinite, workers,
                               protocol)
    if backend == "ale-vector":
        if keep_rgb or breakout_infinite:
            raise FlSaliencyError("the ale-vector backend gives no RGB screens and no BreakoutInfinite; "
                                  "use --env-backend baselines")
        from fl_saliency.envs.ale_vector import AleVectorEnv

        return AleVectorEnv(env_name, num_envs, seed, max_eplen, protocol)
    raise FlSaliencyError(f"unknown env backend {backend!r}; choose one of: {', '.join(BACKENDS)}")


def make_pipelined_vec_env(env_name: str, num_envs: int, seed: int, backend: str = "baselines",
                           workers: int | None = None, pipelined: bool = True, **options) -> PipelinedVecEnv:
    """``make_vec_env`` in two groups that take turns (``PipelinedVecEnv``) where the environments
    step in subprocesses on two cores or more: ``workers`` (default: the CPU cores) env processes
    in all, half per group. One group (no pipelining) for ``ale-vector``, one env process, or
    ``pipelined=False``."""
    workers = env_workers(num_envs, workers)
    groups = 2 if pipelined and backend == "baselines" and workers >= 2 else 1
    if backend == "baselines":
        options["workers"] = max(1, workers // groups)
    return PipelinedVecEnv([make_vec_env(env_name, stop - start, seed + start, backend, **options)
                            for start, stop in split_evenly(num_envs, groups)])
