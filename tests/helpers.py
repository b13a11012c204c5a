"""Helpers that several test files share (fixtures are in conftest.py)."""

import json

import joblib
import numpy as np

from fl_saliency import cli
from fl_saliency.ppo import PPOConfig
from fl_saliency.train import TrainSettings
from numpy_reference import random_baselines_params

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
