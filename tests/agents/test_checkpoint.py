import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from fl_saliency.agents import checkpoint
from fl_saliency.agents.checkpoint import CheckpointError, load_into, load_model, load_params, save_params, to_baselines
from fl_saliency.agents.networks import ActorCritic
from fl_saliency.ppo.algorithm import PPO, PPOConfig
from helpers import tiny_ppo, tiny_settings
from numpy_reference import random_baselines_params


def write_experiment(folder, params, network="cnn_sparse_fls", env_name="BreakoutNoFrameskip-v4"):
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(params, folder / "model.pkl")
    (folder / "config.json").write_text(json.dumps({"network": network, "env_name": env_name}))
    return folder


@pytest.mark.parametrize("network", ["cnn_sparse_fls", "cnn_sparse_fls_x3", "cnn_rsppo", "cnn_dense_fls"])
def test_real_joblib_checkpoint_imports_and_exports_unchanged(tmp_path, network):
    params = random_baselines_params(network, 4, np.random.default_rng(1))
    joblib.dump(params, tmp_path / "model.pkl")

    model = ActorCritic(network, 4)
    load_into(model, load_params(tmp_path / "model.pkl"))
    save_params(to_baselines(model), tmp_path / "again.pkl")
    again = joblib.load(tmp_path / "again.pkl")  # our own file, written by us: plain joblib is fine here

    weights = {k: v for k, v in params.items() if not checkpoint.is_optimizer_slot(k)}
    assert set(again) == set(weights)
    for name, array in weights.items():
        assert again[name].dtype == np.float32 and again[name].shape == array.shape, name
        np.testing.assert_array_equal(again[name], array, err_msg=name)


def test_compressed_joblib_and_plain_pickle_load_too(tmp_path):
    params = random_baselines_params("cnn", 4, np.random.default_rng(2))
    joblib.dump(params, tmp_path / "z.pkl", compress=3)
    with open(tmp_path / "p.pkl", "wb") as f:
        pickle.dump(params, f, protocol=2)
    for name in ("z.pkl", "p.pkl"):
        loaded = load_params(tmp_path / name)
        assert set(loaded) == set(params)
        for key in params:
            np.testing.assert_array_equal(loaded[key], params[key])


def test_exported_names_and_layouts_are_baselines(tmp_path):
    model = ActorCritic("cnn_sparse_fls_x3", 4)
    params = to_baselines(model)
    assert params["ppo2_model/pi/c1/w:0"].shape == (8, 8, 4, 32)
    assert params["ppo2_model/pi/c1/b:0"].shape == (1, 32, 1, 1)
    assert params["ppo2_model/pi/h2/h1/w:0"].shape == (3, 3, 64, 256)
    assert params["ppo2_model/pi/h1/h2/b:0"].shape == (1, 1, 1, 1)
    assert params["ppo2_model/pi/fc1/w:0"].shape == (3136, 512)
    assert params["ppo2_model/pi/w:0"].shape == (512, 4)
    assert params["ppo2_model/vf/w:0"].shape == (512, 1)
    assert params["ppo2_model/vf/b:0"].shape == (1,)
    np.testing.assert_array_equal(
        params["ppo2_model/pi/c2/w:0"], model.extractor.c2.weight.detach().numpy().transpose(2, 3, 1, 0)
    )


class WritesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (_touch, (self.target,))


def _touch(path):
    with open(path, "w") as f:
        f.write("pwned")


@pytest.mark.parametrize("via", ["pickle", "joblib"])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, via):
    target = tmp_path / "written_by_pickle"
    payload = {"ppo2_model/pi/c1/w:0": np.zeros(3, np.float32), "evil": WritesAFile(str(target))}
    path = tmp_path / "model.pkl"
    if via == "joblib":
        joblib.dump(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="refusing to unpickle .*_touch"):
        load_params(path)
    assert not target.exists()


def test_os_system_reduce_is_refused(tmp_path):
    target = tmp_path / "ran"
    path = tmp_path / "model.pkl"
    # A classic payload, hand-assembled: os.system("touch <target>")
    path.write_bytes(b"cos\nsystem\n(V" + f"touch {target}".encode() + b"\ntR.")
    with pytest.raises(CheckpointError, match="refusing to unpickle os.system"):
        load_params(path)
    assert not target.exists()


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "model.pkl"
    joblib.dump({"a": np.array([1, "x"], dtype=object)}, path)
    with pytest.raises(CheckpointError):
        load_params(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable checkpoint"),
        (b"not a pickle at all", "not a readable checkpoint"),
        (pickle.dumps([1, 2, 3]), "expected a dict"),
        (pickle.dumps({"a": 1.0}), "expected a dict"),
    ],
)
def test_files_that_are_not_checkpoints_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_params(path)


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "model.pkl"
    joblib.dump(random_baselines_params("cnn", 4, np.random.default_rng(0)), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_params(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_params(tmp_path / "nope.pkl")


@pytest.mark.slow
def test_checkpoint_of_another_network_names_first_offending_parameter():
    params = random_baselines_params("cnn", 4, np.random.default_rng(0))
    with pytest.raises(CheckpointError, match="network cnn_sparse_fls: missing parameter ppo2_model/pi/h1/w:0"):
        load_into(ActorCritic("cnn_sparse_fls", 4), params)
    with pytest.raises(CheckpointError, match="network cnn_sparse_fls_pool: ppo2_model/pi/fc1/w:0 has shape \\[3136, 512\\], expected \\[64, 512\\]"):
        load_into(ActorCritic("cnn_sparse_fls_pool", 4), random_baselines_params("cnn_sparse_fls", 4, np.random.default_rng(0)))
    with pytest.raises(CheckpointError, match="unexpected parameter ppo2_model/pi/h1/w:0"):
        load_into(ActorCritic("cnn", 4), random_baselines_params("cnn_sparse_fls", 4, np.random.default_rng(0)))


def test_matching_networks_identifies_architecture():
    params = random_baselines_params("cnn_sparse_fls_x3", 4, np.random.default_rng(0))
    assert checkpoint.matching_networks(params) == ["cnn_sparse_fls_x3"]
    # These share every parameter name and shape: only config.json can tell them apart.
    params = random_baselines_params("cnn_sparse_fls", 4, np.random.default_rng(0))
    assert set(checkpoint.matching_networks(params)) == {
        "cnn_sparse_fls", "cnn_sparse_fls_norm", "cnn_sparse_fls_sp2", "cnn_sparse_fls_norelu",
    }


def test_load_model_from_experiment_folder(tmp_path):
    params = random_baselines_params("cnn_sparse_fls", 4, np.random.default_rng(3))
    folder = write_experiment(tmp_path / "exp", params)
    model, experiment = load_model(folder)
    assert experiment.network == "cnn_sparse_fls" and model.n_actions == 4
    torch.testing.assert_close(model.pi.bias.detach(), torch.from_numpy(params["ppo2_model/pi/b:0"]))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"env_name": "BreakoutNoFrameskip-v4"}, "does not name network"),
        ({"network": "cnn_sparse_fls"}, "does not name env_name"),
        ({"network": "cnn_magic", "env_name": "BreakoutNoFrameskip-v4"}, "unknown network 'cnn_magic'"),
        ({"network": "cnn_sparse_fls", "env_name": "PongNoFrameskip-v4"}, "has 4 actions but PongNoFrameskip-v4 has 6"),
        ({"network": "cnn_sparse_fls", "env_name": "NotAGame-v4"}, "unknown Atari game"),
    ],
)
def test_bad_experiment_configs(tmp_path, config, message):
    folder = write_experiment(tmp_path / "exp", random_baselines_params("cnn_sparse_fls", 4, np.random.default_rng(0)))
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoint.FlSaliencyError, match=message):
        load_model(folder)


def test_save_is_atomic_and_keeps_permissions(tmp_path):
    path = tmp_path / "model.pkl"
    save_params({"x": np.ones(2, np.float32)}, path)
    assert os.listdir(tmp_path) == ["model.pkl"]
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fl_saliency.cli", *args], capture_output=True, text=True)


@pytest.mark.subprocess
def test_cli_inspect_experiment_folder(tmp_path):
    folder = write_experiment(tmp_path / "exp", random_baselines_params("cnn_sparse_fls", 4, np.random.default_rng(0)))
    result = run_cli("inspect", str(folder))
    assert result.returncode == 0, result.stderr
    assert "network:    cnn_sparse_fls" in result.stdout and "game:       BreakoutNoFrameskip-v4" in result.stdout
    assert "ppo2_model/pi/h1/w:0" in result.stdout and "[3, 3, 64, 256]" in result.stdout
    assert "optimizer slots ignored" in result.stdout and "matches:    yes" in result.stdout


@pytest.mark.subprocess
def test_cli_inspect_mismatch_is_one_line(tmp_path):
    folder = write_experiment(tmp_path / "exp", random_baselines_params("cnn", 4, np.random.default_rng(0)))
    result = run_cli("inspect", str(folder))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "fl-saliency: error: " + str(folder / "model.pkl") + " does not match network cnn_sparse_fls: missing parameter ppo2_model/pi/h1/w:0"
    ]


@pytest.mark.subprocess
def test_cli_inspect_bare_model_guesses_network(tmp_path):
    path = tmp_path / "model.pkl"
    joblib.dump(random_baselines_params("cnn_dense_fls", 9, np.random.default_rng(0)), path)
    result = run_cli("inspect", str(path))
    assert result.returncode == 0, result.stderr
    assert "matches:    cnn_dense_fls, cnn_dense_fls_norelu" in result.stdout and "actions:    9" in result.stdout


@pytest.mark.subprocess
def test_cli_inspect_garbage_is_one_line(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_text("hello")
    result = run_cli("inspect", str(path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "not a readable checkpoint" in result.stderr


# --- real files of the original code (tests/fixtures/original, written by benchmarks/original_tf.py) ----------

ORIGINAL = Path(__file__).resolve().parents[1] / "fixtures" / "original"
ORIGINAL_NETWORKS = ["cnn_daqn", "cnn_sparse_fls_pool"]


@pytest.mark.parametrize("network", ORIGINAL_NETWORKS)
def test_original_model_gives_the_originals_outputs(network):
    model, experiment = load_model(ORIGINAL / network)
    assert experiment.network == network
    expected = np.load(ORIGINAL / network / "outputs.npz")
    with torch.no_grad():
        logits, value, attention = model(torch.from_numpy(expected["obs"].transpose(0, 3, 1, 2).copy()))
    for name, ours in (("logits", logits), ("value", value), ("attention", attention)):
        np.testing.assert_allclose(ours.numpy(), expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
    assert expected["attention"].std() > 1e-3  # a batch on which the attention map varies


@pytest.mark.parametrize("network", ORIGINAL_NETWORKS)
def test_original_adam_state_is_read_as_one_tensorflow_step(network):
    params = load_params(ORIGINAL / network / "model.pkl")
    assert type(params["beta1_power:0"]) is np.float32 and type(params["beta2_power:0"]) is np.float32
    assert params["beta1_power:0"] == np.float32(0.9) * np.float32(0.9)  # TF: beta^(t+1) after t steps
    model = ActorCritic(network, 4, initialise=False)
    load_into(model, params)
    adam = checkpoint.adam_from_baselines(params, model)
    assert adam.step == 1
    # After one step from zero moments m = (1 - b1) g and v = (1 - b2) g^2, so v = m^2 (1 - b2) / (1 - b1)^2.
    for name in model.state_dict():
        m, v = adam.exp_avg[name].double(), adam.exp_avg_sq[name].double()
        torch.testing.assert_close(v, m**2 * 0.001 / 0.1**2, rtol=1e-4, atol=1e-30, msg=name)
    assert float(adam.exp_avg["extractor.features.c1.weight"].abs().max()) > 0


@pytest.mark.parametrize("network", ORIGINAL_NETWORKS)
def test_what_we_write_has_the_originals_entries_dtypes_and_shapes(tmp_path, network):
    original = load_params(ORIGINAL / network / "model.pkl")
    model = ActorCritic(network, 4)
    learner = PPO(model, PPOConfig(), seed=0, device=torch.device("cpu"))
    for _ in range(3):
        model(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))[0].sum().backward()
        learner.adam_step()
    checkpoint.save_model(model, tmp_path / "model.pkl", learner.adam_state())
    ours = joblib.load(tmp_path / "model.pkl")  # our own file: plain joblib is fine here
    assert set(ours) == set(original)
    for name, value in original.items():
        assert type(ours[name]) is type(value) and ours[name].dtype == value.dtype, name
        assert np.shape(ours[name]) == np.shape(value), name
    assert ours["beta1_power:0"] == np.float32(0.9) ** 4 and ours["beta2_power:0"] == np.float32(0.999) ** 4
    state = learner.optimizer.state[model.get_parameter("extractor.features.c1.weight")]
    np.testing.assert_array_equal(ours["ppo2_model/pi/c1/w/Adam_1:0"], state["exp_avg_sq"].numpy().transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(ours["ppo2_model/pi/c1/b/Adam:0"],
                                  learner.optimizer.state[model.get_parameter("extractor.features.c1.bias")]["exp_avg"].numpy().reshape(1, 32, 1, 1))


def test_original_file_round_trips_exactly():
    params = load_params(ORIGINAL / "cnn_sparse_fls_pool" / "model.pkl")
    model = ActorCritic("cnn_sparse_fls_pool", 4, initialise=False)
    load_into(model, params)
    again = to_baselines(model, checkpoint.adam_from_baselines(params, model))
    assert set(again) == set(params)
    for name, value in params.items():
        assert type(again[name]) is type(value), name
        np.testing.assert_array_equal(again[name], value, err_msg=name)


@pytest.mark.parametrize("steps", [0, 1, 2, 7, 500, 829, 830, 5000, 87_292, 87_293, 10**6])
def test_step_count_survives_tensorflows_beta_powers(steps):
    beta1_power, beta2_power = (checkpoint.tf_beta_power(beta, steps) for beta in (0.9, 0.999))
    power1 = power2 = np.float32(1)  # the oracle: TF's float32 recurrence from 1, written out
    for _ in range(min(steps + 1, 100_000)):
        power1 = power1 * np.float32(0.9) if power1 >= np.finfo(np.float32).tiny else np.float32(0)
        power2 = power2 * np.float32(0.999) if power2 >= np.finfo(np.float32).tiny else np.float32(0)
    power1 = power1 if power1 >= np.finfo(np.float32).tiny else np.float32(0)
    power2 = power2 if power2 >= np.finfo(np.float32).tiny else np.float32(0)
    assert (beta1_power, beta2_power) == (power1, power2)
    recovered = checkpoint.steps_of_beta_powers(beta1_power, beta2_power)
    # Past the point where both are 0 in float32 the bias corrections are 1: every count steps alike.
    assert recovered == min(steps, 87_293)


def test_loaded_adam_state_steps_as_tensorflows_adam():
    """Moments and beta powers from a Baselines file continue exactly as TF's AdamOptimizer would (numpy oracle)."""
    rng = np.random.default_rng(5)
    model = ActorCritic("cnn", 4)
    params = to_baselines(model)
    for name in list(params):
        params[checkpoint.slot_name(name, "Adam:0")] = rng.normal(0, 1e-3, params[name].shape).astype(np.float32)
        params[checkpoint.slot_name(name, "Adam_1:0")] = rng.uniform(0, 1e-6, params[name].shape).astype(np.float32)
    params["beta1_power:0"], params["beta2_power:0"] = np.float32(0.9**6), np.float32(0.999**6)  # 5 steps taken
    learner = PPO(model, PPOConfig(lr=1e-3), seed=0, device=torch.device("cpu"))
    learner.load_adam_state(checkpoint.adam_from_baselines(params, model))
    logits, value, _ = model(torch.full((2, 4, 84, 84), 100, dtype=torch.uint8))
    (logits.sum() + value.sum()).backward()
    gradients = {checkpoint.baselines_name(n): p.grad.clone() for n, p in model.named_parameters()}
    learner.adam_step()
    after = to_baselines(model)
    for name, g in gradients.items():
        weight, g = params[name], g.numpy()
        g = g.transpose(2, 3, 1, 0) if g.ndim == 4 else g.reshape(weight.shape)
        m = 0.9 * params[checkpoint.slot_name(name, "Adam:0")] + 0.1 * g
        v = 0.999 * params[checkpoint.slot_name(name, "Adam_1:0")] + 0.001 * g**2
        lr_t = 1e-3 * np.sqrt(1 - params["beta2_power:0"]) / (1 - params["beta1_power:0"])
        expected = weight - lr_t * m / (np.sqrt(v) + 1e-5)
        np.testing.assert_allclose(after[name], expected, rtol=1e-5, atol=1e-8, err_msg=name)
        assert np.abs(after[name] - weight).max() > 0 or np.abs(g).max() == 0, name


@pytest.mark.subprocess
def test_every_command_that_loads_a_model_reads_the_originals(tmp_path):
    from fl_saliency.scoring.benchmark import SaliencySettings, run_benchmark
    from fl_saliency.scoring.atari_head.sample import make_sample_trial
    from fl_saliency.evaluation.evaluate import EvalSettings, evaluate

    folder = ORIGINAL / "cnn_sparse_fls_pool"
    result = run_cli("inspect", str(folder))
    assert result.returncode == 0, result.stderr
    assert "matches:    yes" in result.stdout and "(34 optimizer slots ignored)" in result.stdout
    evaluate(EvalSettings(folder, tmp_path / "eval", num_env=1, max_eplen=20, device="cpu"), echo=lambda s: None)
    assert len(json.loads((tmp_path / "eval" / "results.json").read_text())["rewards"]) == 1
    dataset = tmp_path / "atari_head"
    make_sample_trial("Breakout", 13, dataset, seed=1, trial_number=901)
    run_benchmark(SaliencySettings(folder, dataset, tmp_path / "saliency", device="cpu"), echo=lambda s: None)
    assert (tmp_path / "saliency" / "saliency.pkl").exists()


@pytest.mark.slow
def test_fine_tuning_continues_the_originals_weights_and_adam_state(tmp_path):
    from fl_saliency.ppo.train import train

    source = ORIGINAL / "cnn_daqn"
    original = load_params(source / "model.pkl")
    # lr 0: the weights stay the original's, while Adam's moments and step count go on from its state.
    train(tiny_settings(tmp_path / "run", "cnn_daqn", ppo=tiny_ppo(lr=0.0), init_from=source), echo=lambda s: None)
    ours = load_params(tmp_path / "run" / "model.pkl")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["init_from"] == str(source.resolve())
    for name, value in original.items():
        if not checkpoint.is_optimizer_slot(name):
            np.testing.assert_array_equal(ours[name], value, err_msg=name)
    assert checkpoint.steps_of_beta_powers(ours["beta1_power:0"], ours["beta2_power:0"]) == 1 + 2 * 2
    # v after 4 more steps is 0.999^4 v + (1 - 0.999) (g1^2 ... g4^2) >= 0.999^4 v: a restarted Adam would not be.
    for name in ("ppo2_model/pi/c1/w/Adam_1:0", "ppo2_model/pi/h1/w/Adam_1:0", "ppo2_model/pi/fc1/w/Adam_1:0"):
        assert np.all(ours[name] >= 0.999**4 * original[name] * (1 - 1e-5)), name
        assert not np.array_equal(ours[name], original[name]), name


def test_fine_tuning_another_network_is_one_line(tmp_path, capsys):
    from fl_saliency.cli import main

    code = main(["train", "--output-dir", str(tmp_path / "run"), "--network", "cnn_sparse_fls",
                 "--init-from", str(ORIGINAL / "cnn_daqn"), "--num-timesteps", "64", "--num-env", "2", "--nsteps", "16"])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert "holds a cnn_daqn model, not the --network cnn_sparse_fls of this run" in error[0]
    assert not (tmp_path / "run").exists()


def test_fine_tuning_for_another_action_set_is_one_line(tmp_path, capsys):
    from fl_saliency.cli import main

    source = ORIGINAL / "cnn_daqn"  # Breakout's 4 actions
    for args, game in [(["--env-name", "MsPacman"], "MsPacman has 9"),
                       (["--full-action-space"], "BreakoutNoFrameskip-v4 with the full action space has 18")]:
        code = main(["train", "--output-dir", str(tmp_path / "run"), "--network", "cnn_daqn", "--init-from", str(source),
                     "--num-timesteps", "64", "--num-env", "2", "--nsteps", "16", *args])
        assert code == 2 and capsys.readouterr().err == (
            f"fl-saliency: error: --init-from {source} (trained on BreakoutNoFrameskip-v4) has 4 actions but {game}\n")
    assert not (tmp_path / "run").exists()


def test_partial_or_misshapen_adam_state_is_named(tmp_path):
    model = ActorCritic("cnn", 4)
    learner = PPO(model, PPOConfig(), seed=0, device=torch.device("cpu"))
    params = to_baselines(model, learner.adam_state())
    assert checkpoint.adam_from_baselines(to_baselines(model), model) is None  # weights only: a fresh Adam
    del params["ppo2_model/vf/b/Adam_1:0"]
    with pytest.raises(CheckpointError, match="part of the Adam state but not ppo2_model/vf/b/Adam_1:0"):
        checkpoint.adam_from_baselines(params, model)
    params["ppo2_model/vf/b/Adam_1:0"] = np.zeros(2, np.float32)
    with pytest.raises(CheckpointError, match=r"ppo2_model/vf/b/Adam_1:0 has shape \[2\], expected \[1\]"):
        checkpoint.adam_from_baselines(params, model)


# --- files the original's strict Model.load reads (issue 24, item 18) -------------------------------------------


@pytest.mark.parametrize("network", ORIGINAL_NETWORKS)
def test_a_model_saved_without_an_optimizer_has_all_the_originals_variables(tmp_path, network):
    original = load_params(ORIGINAL / network / "model.pkl")
    model = ActorCritic(network, 4)
    checkpoint.save_model(model, tmp_path / "model.pkl")
    ours = load_params(tmp_path / "model.pkl")
    assert set(ours) == set(original)
    for name, value in original.items():
        assert type(ours[name]) is type(value) and ours[name].dtype == value.dtype, name
        assert np.shape(ours[name]) == np.shape(value), name
        if "/Adam" in name:
            assert not ours[name].any(), name
    # TensorFlow creates beta1_power and beta2_power at beta1 and beta2, multiplied after each step.
    assert ours["beta1_power:0"] == np.float32(0.9) and ours["beta2_power:0"] == np.float32(0.999)
    assert checkpoint.adam_from_baselines(ours, model).step == 0
    np.testing.assert_array_equal(ours["ppo2_model/pi/c1/w:0"],
                                  model.extractor.features.c1.weight.detach().numpy().transpose(2, 3, 1, 0))


# --- paths that are not regular files (issue 24, item 15) -------------------------------------------------------


def _not_regular_files(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "loop_a", tmp_path / "loop_b")
    os.symlink(tmp_path / "loop_b", tmp_path / "loop_a")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    (tmp_path / "folder" / "model.pkl").mkdir(parents=True)
    return [
        ("/dev/zero", "checkpoint /dev/zero is a character device, not a regular file"),
        (str(tmp_path / "fifo"), f"checkpoint {tmp_path / 'fifo'} is a named pipe (FIFO), not a regular file"),
        (str(tmp_path / "loop_a"), f"checkpoint {tmp_path / 'loop_a'} is a symlink loop"),
        (str(tmp_path / "dangling"), f"checkpoint {tmp_path / 'dangling'} is a symlink to {tmp_path / 'gone'}, "
                                     f"which does not exist"),
        (str(tmp_path / "folder"), f"checkpoint {tmp_path / 'folder' / 'model.pkl'} is a folder, not a regular file"),
        (str(tmp_path / "nope.pkl"), f"checkpoint not found: {tmp_path / 'nope.pkl'}"),
    ]


def test_inspect_says_what_a_path_that_is_not_a_checkpoint_file_is_without_blocking(tmp_path, capsys):
    from fl_saliency.cli import main

    signal.alarm(60)  # a FIFO opened for reading would wait for a writer for ever
    try:
        for path, message in _not_regular_files(tmp_path):
            code = main(["inspect", path])
            error = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and error == [f"fl-saliency: error: {message}"], path
    finally:
        signal.alarm(0)


def test_a_config_json_that_is_a_fifo_or_too_large_is_one_line(tmp_path):
    os.mkfifo(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match=r"^config.json .*config.json is a named pipe \(FIFO\), not a regular file$"):
        checkpoint.load_config(tmp_path / "config.json")
    big = tmp_path / "big.json"
    big.write_text('{"network": "cnn", "env_name": "Breakout", "pad": "' + "x" * 2**20 + '"}')
    with pytest.raises(CheckpointError, match=r"is larger than 1 MiB: not a config.json of fl-saliency$"):
        checkpoint.load_config(big)


# --- sizes checked before they are allocated (issue 24, item 14) ------------------------------------------------


def write_declaring_array(path, shape, data_bytes):
    """A zlib-compressed joblib file whose one array declares ``shape`` and is followed by ``data_bytes`` zero bytes:
    small on disk, whatever it declares."""
    from unittest import mock

    from joblib import numpy_pickle

    real = numpy_pickle.NumpyPickler._create_array_wrapper

    def declaring(self, array):
        wrapper = real(self, array)
        wrapper.shape = shape
        return wrapper

    def writing(self, array, pickler):
        for _ in range(data_bytes // 2**20):
            pickler.file_handle.write(bytes(2**20))

    with mock.patch.object(numpy_pickle.NumpyPickler, "_create_array_wrapper", declaring), \
            mock.patch.object(numpy_pickle.NumpyArrayWrapper, "write_array", writing):
        joblib.dump({"ppo2_model/pi/fc1/w:0": np.zeros(1, np.float32)}, path, compress=("zlib", 1))


def peak_allocated(function, *args):
    """The most bytes Python and numpy held at once while ``function`` ran (tracemalloc sees numpy's buffers)."""
    import tracemalloc

    checkpoint.checkpoint_limits()  # computed once per process, from the networks: not the file's doing
    tracemalloc.start()
    try:
        function(*args)
    except CheckpointError as exc:
        return tracemalloc.get_traced_memory()[1], str(exc)
    finally:
        tracemalloc.stop()
    raise AssertionError("not refused")


def test_an_array_declaring_gigabytes_is_refused_before_it_is_allocated(tmp_path):
    path = tmp_path / "model.pkl"
    write_declaring_array(path, (2**29,), 2**22)  # 2 GiB of float32 declared; 4 MiB of zeros present
    assert path.stat().st_size < 100_000
    peak, message = peak_allocated(load_params, path)
    assert message == (f"{path} declares an array of shape [536870912] (2,048 MiB), larger than any checkpoint of "
                       f"fl-saliency holds (6 MiB): refused before reading it")
    assert peak < 32 * 2**20


def test_a_file_handing_out_more_bytes_than_any_checkpoint_is_refused_before_reading_them(tmp_path):
    import struct
    import zlib

    # A plain pickle of one 64 MiB bytes object (BINBYTES8), zlib-compressed as joblib writes it: 64 KB on disk.
    path = tmp_path / "model.pkl"
    compressor = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(compressor.compress(b"\x80\x04\x8e" + struct.pack("<Q", 2**26)))
        for _ in range(64):
            f.write(compressor.compress(bytes(2**20)))
        f.write(compressor.compress(b".") + compressor.flush())
    assert path.stat().st_size < 200_000
    peak, message = peak_allocated(load_params, path)
    limit = checkpoint.checkpoint_limits().file_bytes
    assert message == (f"{path} holds more than {limit / 2**20:,.0f} MiB of data, more than any checkpoint of "
                       f"fl-saliency: refused before reading it")
    # The read that would cross the cap is refused before it is made; what remains is the zlib reader's own buffer
    # (joblib inflates 8 KiB of input at a time, at most about 8 MiB of zeros, copied twice).
    assert peak < 32 * 2**20


def test_the_size_caps_admit_the_largest_network_with_its_adam_state(tmp_path):
    from fl_saliency.agents.networks import NETWORKS, parameter_count

    largest = max(NETWORKS, key=lambda name: parameter_count(ActorCritic(name, 18, initialise=False)))
    model = ActorCritic(largest, 18)
    checkpoint.save_model(model, tmp_path / "model.pkl")
    assert len(load_params(tmp_path / "model.pkl")) == 3 * len(model.state_dict()) + 2


def test_a_path_under_a_file_says_which_part_is_the_file(tmp_path, capsys):
    from fl_saliency.cli import main

    (tmp_path / "run").write_text("not a folder")
    assert main(["inspect", str(tmp_path / "run" / "model.pkl")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"fl-saliency: error: checkpoint not found: {tmp_path / 'run' / 'model.pkl'} ({tmp_path / 'run'} is a file, "
        f"not a folder)"]


@pytest.mark.parametrize("what", ["evaluation file", "saliency file"])
def test_pickled_results_declaring_more_bytes_than_the_bound_are_refused_unread(tmp_path, what):
    import struct

    path = tmp_path / "saliency.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + bytes(1000))  # a 1 TiB bytes object, 1 KB present
    peak, message = peak_allocated(checkpoint.load_restricted, path, what)
    assert message == f"{path} holds more than 256 MiB of data, more than any {what} of fl-saliency: refused before reading it"
    assert peak < 2**20


@pytest.mark.slow
def test_loading_a_model_imports_neither_ppo_nor_the_environments():
    """The model loader sits below training and the environments: a notebook that explains a released model
    does not load them (the game's action count comes from ale-py's ROM list, not from an environment)."""
    code = ("import sys; from fl_saliency.agents.checkpoint import load_model; from fl_saliency import load_agent; "
            "load_model(sys.argv[1]); load_agent(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m.startswith(('fl_saliency.ppo', 'fl_saliency.evaluation', "
            "'fl_saliency.sweep', 'fl_saliency.report')) or m.startswith('fl_saliency.envs.') "
            "and m not in ('fl_saliency.envs.games', 'fl_saliency.envs.protocol')))")
    out = subprocess.run([sys.executable, "-c", code, str(ORIGINAL / "cnn_daqn")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
