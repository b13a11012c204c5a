"""Env worker processes (fl_saliency/envs/pool.py): the same games as in-process, one-line errors, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fl_saliency.envs import make_vec_env
from fl_saliency.common.errors import FlSaliencyError


@pytest.mark.slow
@pytest.mark.parametrize("num_envs, workers", [(2, None), (3, 2)])
def test_subprocess_envs_match_in_process_envs(num_envs, workers):
    actions = np.random.default_rng(10).integers(0, 4, size=(300, num_envs))
    runs = []
    for asynchronous in (True, False):
        vec = make_vec_env("Breakout", num_envs, 13, backend="baselines", asynchronous=asynchronous, workers=workers)
        assert (len(vec.pool.workers) if vec.pool else 0) == (min(workers or 2, num_envs) if asynchronous else 0)
        run = [vec.reset()]
        for a in actions:
            obs, rewards, dones, infos = vec.step(a)
            run.append((obs, rewards, dones, [{k: v for k, v in info.get("episode", {}).items() if k != "t"}
                                               for info in infos]))
        vec.close()
        runs.append(run)
    assert np.array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1:], runs[1][1:]):
        assert all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3])) and a[3] == b[3]
    assert sum(bool(e) for step in runs[1][1:] for e in step[3]) >= 2  # games ended on the way


@pytest.mark.slow
def test_a_failing_worker_is_one_clear_error():
    vec = make_vec_env("Breakout", 2, 0, backend="baselines", workers=2)
    vec.reset()
    with pytest.raises(FlSaliencyError, match=r"environments 1\.\.1 failed: IndexError"):
        vec.step(np.array([0, 99]))  # Breakout has 4 actions
    vec.close()
    vec = make_vec_env("Breakout", 2, 0, backend="baselines", workers=2)
    vec.reset()
    vec.pool.workers[0].process.kill()
    vec.pool.workers[0].process.join()
    with pytest.raises(FlSaliencyError, match=r"the process of environments 0\.\.0 died"):
        vec.step(np.array([0, 0]))
    vec.close()


def test_bad_input_found_in_a_worker_is_its_own_one_line_error():
    import multiprocessing

    with pytest.raises(FlSaliencyError, match="^--breakout-infinite patches Breakout's score; the game here is Pong$"):
        make_vec_env("Pong", 2, 0, backend="baselines", breakout_infinite=True, workers=2)
    assert multiprocessing.active_children() == []  # the worker that was fine is closed too


PARENT = """
import sys, time
from fl_saliency.envs import make_pipelined_vec_env
env = make_pipelined_vec_env("Breakout", 4, 0, backend="baselines", workers=2)
env.reset()
print(" ".join(str(w.process.pid) for group in env.groups for w in group.pool.workers), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie, dead and waiting to be reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.subprocess
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_end_when_their_parent_is_killed(how):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        parent.send_signal(how)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if _alive(pid)], "env workers outlived their parent"
    finally:
        parent.kill()
