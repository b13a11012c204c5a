"""Vectorised Atari environments with Baselines' VecEnv semantics, behind one interface.

``make_vec_env(env_name, num_envs, seed, backend=...)`` returns an object with

- ``reset() -> obs``: uint8 (N, 4, 84, 84), oldest frame first; environment ``rank`` is seeded
  ``seed + rank``;
- ``step(actions) -> (obs, rewards, dones, infos)``: ``rewards`` float32 (N,) clipped to their sign,
  ``dones`` bool (N,) the agent's done (a lost life included); on a done the returned
  observation already starts the next episode, its stack zeroed; ``infos[i]["episode"] =
  {"r", "l", "t"}`` when environment i finished a full game (Monitor: all lives, unclipped
  score, time since the environment started); with ``keep_rgb``, ``infos[i]["rgb"]`` is the
  emulator's current 210x160 RGB screen (what Baselines' ``get_images()`` shows);
- ``step_async(actions)`` then ``step_wait()``: the same step in two calls, so that the caller can
  work while the environments run (a no-op split where they run in-process);
- ``num_envs``, ``n_actions``, ``close()``.

Backends: ``baselines`` (default) runs the exact Python wrapper chain of wrappers.py in a few
processes (by default one per CPU core), each stepping a block of environments; ``ale-vector``
runs ale-py's C++ vector environment completed in Python (ale_vector.py; its remaining
differences are listed in the README).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from fl_saliency.errors import FlSaliencyError
from fl_saliency.games import num_actions, parse_game
from fl_saliency.settings import setting
from fl_saliency.wrappers import FRAME_SIZE, FrameStacker, make_atari_env

BACKENDS = ("baselines", "ale-vector")


def backend_setting():
    return setting("baselines", choices=BACKENDS,
                   help="baselines: the exact Python wrapper chain; ale-vector: ale-py's faster C++ vector env")


def workers_setting():
    return setting(None, min=1, help="processes stepping the baselines backend's environments, each a block of them "
                                     "(default: one per CPU core)")

# Env processes yield the CPU to the process that drives them: acting for one group of
# environments while the others step is the rollout's serial path (measured: 15% faster rollouts
# on 2 cores with niceness 10).
WORKER_NICENESS = 10


def _episodes(info: dict) -> tuple[dict | None, np.ndarray | None]:
    episodes = info.get("episode")
    return (episodes, info["_episode"]) if episodes is not None else (None, None)


def _unbatch_infos(info: dict, num_envs: int) -> list[dict]:
    """Per-env dicts of what gymnasium batched: the Monitor episode that ended on the step (in
    ``final_info`` under SAME_STEP autoreset) or, failing that, one that ended inside the reset that
    followed (a time limit hit on a hidden FIRE/NOOP step); and the RGB screens if kept."""
    per_env: list[dict] = [{} for _ in range(num_envs)]
    sources = [_episodes(info)]
    if "final_info" in info:
        final, final_mask = _episodes(info["final_info"])
        if final is not None:
            sources.insert(0, (final, final_mask & info["_final_info"]))
    for episodes, mask in sources:
        if episodes is None:
            continue
        for i in np.flatnonzero(mask):
            per_env[i].setdefault("episode", {"r": float(episodes["r"][i]), "l": int(episodes["l"][i]),
                                              "t": float(episodes["t"][i])})
    if "rgb" in info:
        for i in range(num_envs):
            per_env[i]["rgb"] = info["rgb"][i]
    return per_env


class EnvBlock:
    """Consecutive ranks of the chain, stepped one after another in one process (SAME_STEP autoreset)."""

    def __init__(self, env_name: str, num_envs: int, seed: int, max_eplen: int | None = None, keep_rgb: bool = False,
                 breakout_infinite: bool = False):
        make = functools.partial(make_atari_env, env_name, max_eplen, keep_rgb, breakout_infinite)
        self.envs = SyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
        self.num_envs = num_envs
        self.seed = seed

    def reset(self) -> tuple[np.ndarray, list[dict]]:
        frames, info = self.envs.reset(seed=self.seed)
        return frames, _unbatch_infos(info, self.num_envs)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        frames, rewards, terminated, truncated, info = self.envs.step(actions)
        return frames, rewards.astype(np.float32), terminated | truncated, _unbatch_infos(info, self.num_envs)

    def close(self) -> None:
        self.envs.close()


def _serve_block(conn, frames_buffer, block_args: tuple) -> None:
    """Worker process: build an EnvBlock, then answer reset/step/close; frames go into shared memory."""
    # Ctrl-C is the training loop's to handle (checkpoint, then stop); workers must outlive it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    try:
        block = EnvBlock(*block_args)
        frames_out = np.frombuffer(frames_buffer, np.uint8).reshape(block.num_envs, FRAME_SIZE, FRAME_SIZE)
        conn.send(("ok", None))
        while True:
            command, actions = conn.recv()
            if command == "close":
                block.close()
                return
            frames, *rest = block.reset() if command == "reset" else block.step(actions)
            frames_out[:] = frames
            conn.send(("ok", rest))
    except (EOFError, KeyboardInterrupt):
        return
    except Exception as exc:  # reported in the main process as one line
        conn.send(("error", (type(exc).__name__, str(exc))))
    finally:
        conn.close()


@dataclass
class EnvWorker:
    """One process stepping the environments ``ranks``; its frames arrive in shared memory."""

    ranks: slice
    connection: Connection
    process: multiprocessing.Process
    frames: np.ndarray

    def _died(self) -> FlSaliencyError:
        self.process.join(timeout=1)
        return FlSaliencyError(f"the process of environments {self.ranks.start}..{self.ranks.stop - 1} died "
                               f"(exit code {self.process.exitcode})")

    def send(self, command: str, actions: np.ndarray | None = None) -> None:
        try:
            self.connection.send((command, actions))
        except (BrokenPipeError, ConnectionResetError):
            raise self._died() from None

    def receive(self):
        try:
            status, payload = self.connection.recv()
        except (EOFError, ConnectionResetError):
            raise self._died() from None
        if status == "error":
            kind, message = payload
            if kind == FlSaliencyError.__name__:  # bad input, already said in one line
                raise FlSaliencyError(message)
            raise FlSaliencyError(f"environments {self.ranks.start}..{self.ranks.stop - 1} failed: {kind}: {message}")
        return payload

    def close(self) -> None:
        try:
            self.connection.send(("close", None))
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
        self.connection.close()


def split_evenly(total: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive (start, stop) ranges covering range(total), sizes differing by at most one."""
    bounds = np.linspace(0, total, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def env_workers(num_envs: int, workers: int | None) -> int:
    """How many env processes: ``workers`` (default: the CPU cores this process may use), at most one per env."""
    if workers is not None and workers < 1:
        raise FlSaliencyError(f"--env-workers must be at least 1, got {workers}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(num_envs, workers or cores))


class BaselinesVecEnv:
    """The exact Baselines chain per environment, in ``workers`` subprocesses that each step a block
    of consecutive ranks (or in-process). Fewer processes than environments on few cores: every
    process switch costs as much as a fair part of an emulator step."""

    def __init__(self, env_name: str, num_envs: int, seed: int, max_eplen: int | None = None,
                 keep_rgb: bool = False, asynchronous: bool = True, breakout_infinite: bool = False,
                 workers: int | None = None):
        self.num_envs = num_envs
        self.n_actions = num_actions(env_name)
        self.stacker = FrameStacker(num_envs)
        options = (max_eplen, keep_rgb, breakout_infinite)
        workers = env_workers(num_envs, workers) if asynchronous and num_envs > 1 else 0
        if not workers:
            self.block = EnvBlock(env_name, num_envs, seed, *options)
            self.workers = []
            return
        self.block = None
        self.frames = np.zeros((num_envs, FRAME_SIZE, FRAME_SIZE), np.uint8)
        self.workers: list[EnvWorker] = []
        context = multiprocessing.get_context()
        for start, stop in split_evenly(num_envs, workers):
            buffer = context.RawArray("B", (stop - start) * FRAME_SIZE * FRAME_SIZE)
            here, there = context.Pipe()
            process = context.Process(target=_serve_block, args=(there, buffer, (env_name, stop - start, seed + start,
                                                                                 *options)), daemon=True)
            process.start()
            there.close()
            frames = np.frombuffer(buffer, np.uint8).reshape(stop - start, FRAME_SIZE, FRAME_SIZE)
            self.workers.append(EnvWorker(slice(start, stop), here, process, frames))
        try:
            for worker in self.workers:
                worker.receive()  # built, or the reason it could not be
        except FlSaliencyError:
            self.close()
            raise

    def _gather(self) -> tuple[np.ndarray, list]:
        """Each worker's answer, frames copied out of shared memory in rank order."""
        answers = []
        for worker in self.workers:
            answers.append(worker.receive())
            self.frames[worker.ranks] = worker.frames
        return self.frames, answers

    def reset(self) -> np.ndarray:
        if self.block:
            frames, self.reset_infos = self.block.reset()
        else:
            for worker in self.workers:
                worker.send("reset")
            frames, answers = self._gather()
            self.reset_infos = [info for (infos,) in answers for info in infos]
        return self.stacker.reset(frames)

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step; the environments run in their processes until ``step_wait``."""
        actions = np.asarray(actions)
        if self.block:
            self._pending = actions
        else:
            for worker in self.workers:
                worker.send("step", actions[worker.ranks])

    def step_wait(self):
        if self.block:
            frames, rewards, dones, infos = self.block.step(self._pending)
        else:
            frames, answers = self._gather()
            rewards = np.concatenate([a[0] for a in answers])
            dones = np.concatenate([a[1] for a in answers])
            infos = [info for a in answers for info in a[2]]
        return self.stacker.push(frames, dones), rewards, dones, infos

    def step(self, actions: np.ndarray):
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        if self.block:
            self.block.close()
        for worker in self.workers:
            worker.close()
        self.workers = []


class EnvGroups:
    """``num_envs`` environments as vector envs that take turns: two halves of subprocess
    environments, so that the network can act for one half while the other steps (one group where
    stepping runs in-process or in one process). Env ``rank`` is seeded ``seed + rank`` whatever the
    split, so every environment plays the same games as unsplit. ``parts`` pairs each group's slice
    of the ranks with its vector env; ``workers`` (default: the CPU cores) is the number of env
    processes in all."""

    def __init__(self, env_name: str, num_envs: int, seed: int, backend: str = "baselines",
                 workers: int | None = None, **options):
        workers = env_workers(num_envs, workers)
        groups = 2 if backend == "baselines" and workers >= 2 else 1
        if backend == "baselines":
            options["workers"] = max(1, workers // groups)
        self.parts = [(slice(start, stop), make_vec_env(env_name, stop - start, seed + start, backend, **options))
                      for start, stop in split_evenly(num_envs, groups)]
        self.num_envs = num_envs
        self.n_actions = self.parts[0][1].n_actions

    def reset(self) -> np.ndarray:
        obs = np.concatenate([env.reset() for _, env in self.parts])
        self.reset_infos = [info for _, env in self.parts for info in env.reset_infos]
        return obs

    def close(self) -> None:
        for _, env in self.parts:
            env.close()


def make_vec_env(env_name: str, num_envs: int, seed: int, backend: str = "baselines", max_eplen: int | None = None,
                 keep_rgb: bool = False, asynchronous: bool = True, breakout_infinite: bool = False,
                 workers: int | None = None):
    """A vector environment of ``num_envs`` copies of the game, env ``rank`` seeded ``seed + rank``."""
    parse_game(env_name)
    if num_envs < 1:
        raise FlSaliencyError(f"--num-env must be at least 1, got {num_envs}")
    if backend == "baselines":
        return BaselinesVecEnv(env_name, num_envs, seed, max_eplen, keep_rgb, asynchronous, breakout_infinite, workers)
    if backend == "ale-vector":
        if keep_rgb or breakout_infinite:
            raise FlSaliencyError("the ale-vector backend gives no RGB screens and no BreakoutInfinite; "
                                  "use --env-backend baselines")
        from fl_saliency.ale_vector import AleVectorEnv

        return AleVectorEnv(env_name, num_envs, seed, max_eplen)
    raise FlSaliencyError(f"unknown env backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
