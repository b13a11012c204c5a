"""Non-finite numbers: a diverging run stops in one line and keeps its last good checkpoint; a model with NaN or
infinite weights is refused by every command that loads one (issue 24, item 7)."""

import json

import numpy as np
import pytest
import torch

from fl_saliency.ppo import algorithm as ppo_module
from fl_saliency.agents.checkpoint import CheckpointError, load_model, load_params, save_model, save_params, to_baselines
from fl_saliency.cli import main
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.agents.networks import ActorCritic
from fl_saliency.ppo.train import load_checkpoint, train
from helpers import TINY_FLAGS as TINY, tiny_settings


def nan_experiment(folder, value=float("nan")):
    """An experiment folder whose cnn model has one non-finite weight, written as Baselines writes any dict."""
    model = ActorCritic("cnn", 4)
    with torch.no_grad():
        model.vf.weight[3, 0] = value
    folder.mkdir()
    save_params(to_baselines(model), folder / "model.pkl")
    (folder / "config.json").write_text(json.dumps({"network": "cnn", "env_name": "BreakoutNoFrameskip-v4"}))
    return folder


@pytest.mark.slow
def test_a_diverging_run_is_one_line_naming_the_update_and_the_loss(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--output-dir", str(out), "--network", "cnn", "--lr", "1000", "--num-timesteps", "64",
                 "--device", "cpu", *TINY])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert error.startswith("fl-saliency: error: training diverged at update 1/2: the loss (")
    assert error.endswith("became NaN or infinite; no checkpoint was written; lower --lr and start over with --force")
    assert not (out / "model.pkl").exists() and not (out / "checkpoint.pt").exists()
    # The advice works: the same command with a sane --lr and --force trains.
    assert main(["train", "--output-dir", str(out), "--network", "cnn", "--num-timesteps", "64", "--device", "cpu",
                 "--force", *TINY]) == 0
    assert np.isfinite(load_params(out / "model.pkl")["ppo2_model/pi/w:0"]).all()


@pytest.mark.slow
def test_weights_going_nan_after_a_checkpoint_keep_that_checkpoint(tmp_path, monkeypatch):
    real_update = ppo_module.PPO.update
    calls = []

    def update_that_breaks_at_the_second(self, rollout, lr):
        calls.append(lr)
        if len(calls) == 2:
            with torch.no_grad():
                self.model.vf.bias.fill_(float("inf"))
        return real_update(self, rollout, lr)

    monkeypatch.setattr(ppo_module.PPO, "update", update_that_breaks_at_the_second)
    out = tmp_path / "run"
    with pytest.raises(FlSaliencyError, match=r"^training diverged at update 2/3: the loss \(value_loss\) became NaN "
                                              r"or infinite; the checkpoint of update 1 is kept; "):
        train(tiny_settings(out, updates=3, save_interval=1), echo=lambda text: None)
    assert load_checkpoint(out / "checkpoint.pt")["update"] == 1
    model, _ = load_model(out)  # finite: the file of update 1, not overwritten
    assert torch.isfinite(model.vf.bias).all()


def test_save_model_refuses_nonfinite_weights_and_keeps_the_file(tmp_path):
    model = ActorCritic("cnn", 4)
    save_model(model, tmp_path / "model.pkl")
    before = (tmp_path / "model.pkl").read_bytes()
    with torch.no_grad():
        model.pi.bias[1] = float("-inf")
    with pytest.raises(CheckpointError, match=r"^refusing to write .*model.pkl: the weight ppo2_model/pi/b:0 holds NaN"):
        save_model(model, tmp_path / "model.pkl")
    assert (tmp_path / "model.pkl").read_bytes() == before


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_loading_a_nonfinite_model_names_the_file_and_the_parameter(tmp_path, value):
    folder = nan_experiment(tmp_path / "exp", value)
    with pytest.raises(CheckpointError, match=r"model.pkl: ppo2_model/vf/w:0 holds NaN or infinite values; a model with "
                                              r"non-finite weights is refused$"):
        load_model(folder)


@pytest.mark.parametrize("argv", [
    ["evaluate", "--experiment-dir", "{exp}", "--output-dir", "{tmp}/eval", "--num-env", "1"],
    ["export", "{exp}", "--out", "{tmp}/hf"],
    ["train", "--output-dir", "{tmp}/run", "--network", "cnn", "--init-from", "{exp}", "--num-timesteps", "64", *TINY],
    ["inspect", "{exp}"],
])
def test_every_command_refuses_a_nonfinite_model_in_one_line_and_writes_nothing(tmp_path, capsys, argv):
    folder = nan_experiment(tmp_path / "exp")
    code = main([a.format(exp=folder, tmp=tmp_path) for a in argv])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1, error
    assert error[0].endswith(f"{folder / 'model.pkl'}: ppo2_model/vf/w:0 holds NaN or infinite values; a model with "
                             f"non-finite weights is refused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


@pytest.mark.slow
def test_resuming_a_checkpoint_with_nan_weights_is_one_line(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out, updates=2), echo=lambda text: None)
    state = load_checkpoint(out / "checkpoint.pt")
    state["update"] = 1  # as if stopped after update 1, with a weight gone NaN
    state["ppo"]["model"]["pi.weight"][0, 0] = float("nan")
    torch.save(state, out / "checkpoint.pt")
    with pytest.raises(FlSaliencyError, match=r"checkpoint.pt holds NaN or infinite values in pi.weight: it cannot be "
                                              r"continued; start over with --force$"):
        train(tiny_settings(out, updates=2, resume=True), echo=lambda text: None)
    assert load_checkpoint(out / "checkpoint.pt")["update"] == 1
    train(tiny_settings(out, updates=2, force=True), echo=lambda text: None)  # the advice works
    assert load_checkpoint(out / "checkpoint.pt")["update"] == 2
