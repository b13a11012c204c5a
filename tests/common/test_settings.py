"""Settings dataclasses and the flags derived from them (fl_saliency/common/settings.py, cli.py): defaults,
ranges, parsing, the same words on the command line and in Python."""

import dataclasses

import pytest

from fl_saliency import cli
from fl_saliency.scoring.benchmark import SaliencySettings
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.evaluation.evaluate import EvalSettings
from fl_saliency.ppo.algorithm import PPOConfig
from fl_saliency.common.settings import base_type, describe, field_types, flag_of
from fl_saliency.sweep.grid import SweepSettings
from fl_saliency.ppo.train import TrainSettings
from helpers import run_main

SETTINGS = {"train": TrainSettings, "evaluate": EvalSettings, "saliency": SaliencySettings, "sweep": SweepSettings}


def required_args(command, tmp_path):
    """The required flags of each command, pointing into tmp_path."""
    return {
        "train": ["--output-dir", str(tmp_path / "run")],
        "evaluate": ["--experiment-dir", str(tmp_path / "exp")],
        "saliency": ["--experiment-dir", str(tmp_path / "exp"), "--atari-head-dir", str(tmp_path / "ah"),
                     "--output-dir", str(tmp_path / "sal")],
        "sweep": ["--games", "Breakout", "--networks", "cnn", "--output-dir", str(tmp_path / "sweep")],
    }[command]


def parsed_settings(command, argv):
    parser = cli.build_command_parser(command, command)
    return cli.settings_from_args(SETTINGS[command], parser.parse_args(argv))


def test_without_flags_the_settings_are_the_original_scripts_documented_defaults(tmp_path):
    # docs/spec/protocol.md, section 2 (Baselines PPO2's Atari settings), section 4 (evaluation) and the original README.
    train = parsed_settings("train", required_args("train", tmp_path))
    assert (train.network, train.env_name, train.train_seed, train.num_timesteps) == (
        "cnn_sparse_fls", "BreakoutNoFrameskip-v4", 1, 50_000_000)
    ppo = train.ppo
    assert (ppo.num_envs, ppo.nsteps, ppo.nminibatches, ppo.noptepochs) == (8, 128, 4, 4)
    assert (ppo.lr, ppo.cliprange, ppo.ent_coef, ppo.vf_coef, ppo.max_grad_norm) == (2.5e-4, 0.1, 0.01, 0.5, 0.5)
    assert (ppo.gamma, ppo.lam, ppo.adam_eps, ppo.value_clip, ppo.adam_eps_placement) == (
        0.99, 0.95, 1e-5, True, "tensorflow")
    assert (train.env_backend, train.env_workers, train.precision, train.device) == ("baselines", None, "fp32", "auto")
    assert (train.save_interval, train.log_interval, train.resume, train.force) == (50, 1, False, False)

    ev = parsed_settings("evaluate", ["--experiment-dir", str(tmp_path / "exp")])
    assert ev.output_dir == tmp_path / "exp" / "eval"
    assert (ev.num_env, ev.evals_per_env, ev.eval_seed, ev.max_eplen) == (4, 1, 1000, 108_000)
    assert (ev.raw_obs, ev.processed_obs, ev.progress, ev.deterministic, ev.video_format) == (
        False, False, False, False, "mkv")

    sal = parsed_settings("saliency", required_args("saliency", tmp_path))
    assert (sal.eval_seed, sal.processed_obs, sal.gaze_alignment, sal.sauc_mode, sal.trials) == (
        1000, False, "original", "exact", None)

    sweep = parsed_settings("sweep", required_args("sweep", tmp_path))
    assert (sweep.games, sweep.networks, sweep.seeds, sweep.num_timesteps, sweep.max_eplen) == (
        ["Breakout"], ["cnn"], [1], 50_000_000, 108_000)
    assert sweep.ppo == PPOConfig() and (sweep.env_backend, sweep.precision, sweep.device) == (
        "baselines", "fp32", "auto")


@pytest.mark.parametrize("command", SETTINGS)
def test_flag_defaults_are_the_dataclass_defaults(command, tmp_path):
    parsed = parsed_settings(command, required_args(command, tmp_path))
    given = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed)
             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert parsed == SETTINGS[command](**given)


def ranged_fields(cls):
    """(settings class, field, number type) of every field with a numeric range, nested PPO settings included."""
    hints = field_types(cls)
    for field in dataclasses.fields(cls):
        kind, element = base_type(hints[field.name])
        if dataclasses.is_dataclass(kind):
            yield from ranged_fields(kind)
        elif any(field.metadata.get(k) is not None for k in ("min", "max", "above")):
            yield cls, field, element or kind


def out_of_range(field, kind):
    m = field.metadata
    if m.get("above") is not None:
        return m["above"]
    if m.get("min") is not None:
        return m["min"] - 1
    return m["max"] + 1


RANGED = [(command, cls, field, kind) for command, top in SETTINGS.items() for cls, field, kind in ranged_fields(top)]


@pytest.mark.parametrize("command, cls, field, kind", RANGED,
                         ids=[f"{command}{flag_of(field)}" for command, _, field, _ in RANGED])
def test_every_range_is_refused_on_the_command_line_and_in_the_dataclass_with_the_same_words(
        command, cls, field, kind, tmp_path, capsys):
    bad = out_of_range(field, kind)
    text = f"{bad}:1" if field.name == "evaluate" else str(bad)
    code, err = run_main(capsys, [command, *required_args(command, tmp_path), flag_of(field), text])
    allowed = describe(field, kind)
    assert code == 2 and err.count("\n") == 1, err
    assert f"argument {flag_of(field)}: must be " in err and allowed in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written

    value = (bad, 1) if field.name == "evaluate" else [bad] if field.name in ("seeds", "trials") else bad
    kwargs = {} if cls is PPOConfig else {name: tmp_path for name in ("output_dir", "experiment_dir", "atari_head_dir")
                                          if name in {f.name for f in dataclasses.fields(cls)}}
    if cls is SweepSettings:
        kwargs.update(games=["Breakout"], networks=["cnn"])
    with pytest.raises(FlSaliencyError, match=rf"^{flag_of(field)} must be {allowed}, got "):
        cls(**kwargs, **{field.name: value})


@pytest.mark.parametrize("argv, message", [
    # issue 20 item 6, one by one
    (["train", "--num-env", "0"], "argument --num-env: must be an integer >= 1, got '0'"),
    (["train", "--nsteps", "0"], "argument --nsteps: must be an integer >= 1, got '0'"),
    (["train", "--nminibatches", "0"], "argument --nminibatches: must be an integer >= 1, got '0'"),
    (["train", "--lr", "-1"], "argument --lr: must be a number >= 0, got '-1'"),
    (["train", "--gamma", "5"], "argument --gamma: must be a number between 0 and 1, got '5'"),
    (["train", "--gamma", "nan"], "argument --gamma: must be a number between 0 and 1, got 'nan'"),
    (["train", "--noptepochs", "0"], "argument --noptepochs: must be an integer >= 1, got '0'"),
    (["train", "--nminibatches", "3"], "num_env x nsteps = 1024 does not split into 3 minibatches"),
    (["train", "--num-timesteps", "1000"], "--num-timesteps 1000 is below one update of num_env x nsteps = 1024"),
    (["train", "--num-timesteps", "1.5"], "argument --num-timesteps: must be an integer >= 1, got '1.5'"),
    (["train", "--resume", "--force"], "--resume and --force exclude each other"),
    (["evaluate", "--max-eplen", "0"], "argument --max-eplen: must be an integer >= 1, got '0'"),
    (["evaluate", "--num-env", "2", "--video-env", "2"], "--video-env 2 is not one of the 2 environments"),
    (["sweep", "--seeds", "1,x"], "argument --seeds: must be a comma-separated list, each an integer >= 0, got 'x'"),
    (["sweep", "--evaluate", "16"], "argument --evaluate: takes NUM_ENV:EVALS_PER_ENV, e.g. 16:512; got '16'"),
    (["sweep", "--env-backend", "gpu"], "argument --env-backend: invalid choice: 'gpu'"),
    (["sweep", "--precision", "fp16"], "argument --precision: invalid choice: 'fp16'"),
    (["sweep", "--num-timesteps", "100"], "--num-timesteps 100 is below one update"),
    (["saliency", "--trials", "abc"], "argument --trials: must be a comma-separated list, each an integer >= 0, got 'abc'"),
    (["make-sample-trial", "--out", "OUT", "--frames", "0"], "argument --frames: must be an integer >= 1, got '0'"),
])
def test_bad_numbers_are_one_line_exit_2_and_nothing_written(argv, message, tmp_path, capsys):
    command = argv[0]
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    code, err = run_main(capsys, [*argv[:1], *(required_args(command, tmp_path) if command in SETTINGS else []),
                                  *argv[1:]])
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_integers_accept_integral_floats_and_refuse_fractions(tmp_path):
    settings = parsed_settings("train", [*required_args("train", tmp_path), "--num-timesteps", "5e7",
                                         "--save-interval", "1e2", "--num-env", "16.0"])
    assert (settings.num_timesteps, settings.save_interval, settings.ppo.num_envs) == (50_000_000, 100, 16)
    assert all(type(v) is int for v in (settings.num_timesteps, settings.save_interval, settings.ppo.num_envs))
    assert parsed_settings("sweep", [*required_args("sweep", tmp_path), "--seeds", "1,9e0,1.7e1"]).seeds == [1, 9, 17]
    with pytest.raises(SystemExit):
        parsed_settings("train", [*required_args("train", tmp_path), "--num-timesteps", "1e4.5"])


def test_values_of_the_wrong_type_are_refused_in_programmatic_use(tmp_path):
    # e.g. a hand-edited config.json read back on --resume
    with pytest.raises(FlSaliencyError, match=r"^--num-env must be an integer, got '8'$"):
        PPOConfig(num_envs="8")
    with pytest.raises(FlSaliencyError, match=r"^--lr must be a number, got True$"):
        PPOConfig(lr=True)
    with pytest.raises(FlSaliencyError, match=r"^--precision must be one of: fp32, bf16, got 'fp16'$"):
        TrainSettings(tmp_path, precision="fp16")
    with pytest.raises(FlSaliencyError, match=r"^--seeds must be an integer, got 'x'$"):
        SweepSettings(["Breakout"], ["cnn"], tmp_path, seeds=[1, "x"])


def test_the_device_setting_resolves_to_a_torch_device_or_one_line():
    import torch

    from fl_saliency.common.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(FlSaliencyError, match="unknown --device 'tpu'; use auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(FlSaliencyError, match="--device cuda:1: CUDA is not available on this machine"):
            resolve_device("cuda:1")
