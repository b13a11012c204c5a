"""Helpers that several test files share (fixtures are in conftest.py)."""

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from fl_saliency import cli
from fl_saliency.evaluation.perception_video import VideoWriter
from fl_saliency.ppo.algorithm import PPOConfig
from fl_saliency.ppo.train import TrainSettings
from numpy_reference import random_baselines_params

ROOT = Path(__file__).resolve().parents[1]
FORK = ROOT / "tests" / "fixtures" / "fork"  # written by the original's code: tests/fixtures/make_fork_fixtures.py
CONFIG = {"network": "cnn_sparse_fls", "env_name": "BreakoutNoFrameskip-v4"}
VIDEO_FRAMES = 12

# The paper's Table 2 (4-action game, heads included).
TABLE_2 = {
    "cnn": 1_686_693,
    "cnn_daqn": 130_726,
    "cnn_rsppo": 1_720_999,
    "cnn_sparse_fls": 1_836_710,
    "cnn_sparse_fls_pool": 263_846,
    "cnn_dense_fls": 280_358,
    "cnn_sparse_fls_h1": 1_762_982,
    "cnn_sparse_fls_x3": 2_063_016,
}

# The smallest PPO that trains: 2 environments x 16 steps an update, 2 minibatches, 1 epoch; as flags and as config.
TINY_FLAGS = ["--num-env", "2", "--nsteps", "16", "--nminibatches", "2", "--noptepochs", "1"]


def tiny_ppo(**overrides) -> PPOConfig:
    return PPOConfig(**{"num_envs": 2, "nsteps": 16, "nminibatches": 2, "noptepochs": 1, **overrides})


def tiny_settings(out, network="cnn", updates=2, ppo=None, **kwargs) -> TrainSettings:
    """A CPU training of ``updates`` tiny PPO updates into ``out``."""
    ppo = ppo or tiny_ppo()
    return TrainSettings(output_dir=out, network=network, num_timesteps=updates * ppo.batch_size, ppo=ppo,
                         device="cpu", **kwargs)


def run_main(capsys, argv, **kwargs):
    """(exit status, stderr) of cli.main in this process, argparse's exits included."""
    try:
        code = cli.main(argv, **kwargs)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def write_experiment(folder, network="cnn_sparse_fls", seed=0):
    """An experiment folder of random Baselines-format weights (a 4-action Breakout model): (folder, params)."""
    folder.mkdir(parents=True, exist_ok=True)
    params = random_baselines_params(network, 4, np.random.default_rng(seed))
    joblib.dump(params, folder / "model.pkl")
    (folder / "config.json").write_text(json.dumps({"network": network, "env_name": "BreakoutNoFrameskip-v4"}))
    return folder, params


@contextlib.contextmanager
def mounted_tmpfs(folder, size: str):
    """A tmpfs of ``size`` bytes (mount's suffixes: 2m) at ``folder``: a disk that fills for real.

    Needs root and the mount command; without them the test is skipped, naming the reason.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("cannot mount a small tmpfs to fill: no mount command")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


# Takes the lock of a folder in another process; with "fork", a child of it (an env worker) lives on after it.
HOLDER = """
import os, sys, time
from fl_saliency.common.io import locked_output_dir
with locked_output_dir(sys.argv[1]):
    if sys.argv[2] == "fork":
        started, say_started = os.pipe()
        if os.fork() == 0:  # the child runs its fork hooks (dropping the lock) before it says so
            os.write(say_started, b"x")
            time.sleep(600)
        os.read(started, 1)
    print("locked", flush=True)
    time.sleep(600)
"""


def hold_lock(folder, fork=False) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), "fork" if fork else "-"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def run_folder(root: Path, seed: str, group: str = "Breakout.cnn_sparse_fls") -> Path:
    folder = root / group / seed
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return folder


SWEEP_SCORES = {("Breakout", "cnn"): [10.0, 20.0, 31.0], ("Enduro", "cnn"): [300.0, 500.0, 900.0],
                ("SpaceInvaders", "cnn"): [400.0, 700.0, 1000.0],
                ("Breakout", "cnn_sparse_fls"): [25.0, 40.0, 12.0], ("Enduro", "cnn_sparse_fls"): [800.0, 200.0, 650.0],
                ("SpaceInvaders", "cnn_sparse_fls"): [1200.0, 2000.0, 900.0]}
# The random and human scores of SWEEP_SCORES' games (report/atari_scores.py), by hand.
SWEEP_RANDOM_HUMAN = {"Breakout": (1.7, 30.5), "Enduro": (0.0, 860.5), "SpaceInvaders": (148.0, 1668.7)}


def fake_sweep(root: Path, scores: dict, saliency: bool = False) -> None:
    for (game, network), values in scores.items():
        for seed, value in enumerate(values, start=1):
            folder = run_folder(root, f"{seed:02d}", f"{game}.{network}")
            (folder / "results.json").write_text(json.dumps({"rewards": [value - 1.0, value + 1.0]}))
            if saliency and network != "cnn":
                shutil.copy(FORK / "saliency.pkl", folder / "saliency.pkl")


def write_video(path: Path, fmt: str) -> np.ndarray:
    """A short video of moving blocks in flat colours (so lossy H.264 stays close); returns its frames."""
    frames = np.zeros((VIDEO_FRAMES, 210, 160, 3), np.uint8)
    for i in range(VIDEO_FRAMES):
        frames[i, :, :, 2] = 40
        frames[i, 10 * i: 10 * i + 40, 40:100] = (250, 250, 0)
    writer = VideoWriter(path, 160, 210, fmt, fps=15)
    for frame in frames:
        writer.write(frame)
    writer.close()
    return frames


def run_cli(*args):
    """``fl-saliency ARGS`` in this process (a subprocess would spend seconds importing PyTorch)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:
            code = exc.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
