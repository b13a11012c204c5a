"""The three original scripts take every flag of the originals (github:dniku/free-lunch-saliency) with its meaning.

Each script runs as ``python <script>.py ...`` with the work function replaced by one that keeps
the settings it was given, so the mapping of flag -> setting is checked without running anything.
"""

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def settings_from(script: str, module: str, function: str, argv: list[str], monkeypatch):
    import importlib

    seen = []
    monkeypatch.setattr(importlib.import_module(module), function, lambda settings, *a, **k: seen.append(settings) or {})
    monkeypatch.setattr(sys, "argv", [script, *argv])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert exit_.value.code == 0
    return seen[0]


# train_baselines.py: flag, value given, setting, value expected; then the original's defaults.
TRAIN_FLAGS = [("--network", "cnn_daqn", "network", "cnn_daqn"),
               ("--env-name", "MsPacmanNoFrameskip-v4", "env_name", "MsPacmanNoFrameskip-v4"),
               ("--train-seed", "9", "train_seed", 9),
               ("--num-timesteps", "10000000", "num_timesteps", 10_000_000)]
TRAIN_DEFAULTS = {"network": "cnn_sparse_fls", "env_name": "BreakoutNoFrameskip-v4", "train_seed": 1,
                  "num_timesteps": 50_000_000}


def test_train_baselines_flags(monkeypatch, tmp_path):
    argv = ["--output-dir", str(tmp_path / "run")]
    defaults = settings_from("train_baselines.py", "fl_saliency.ppo.train", "train", argv, monkeypatch)
    assert {k: getattr(defaults, k) for k in TRAIN_DEFAULTS} == TRAIN_DEFAULTS
    assert defaults.ppo.num_envs == 8  # the original passes --num_env 8 to baselines.run
    given = settings_from("train_baselines.py", "fl_saliency.ppo.train", "train",
                          argv + [a for flag, value, _, _ in TRAIN_FLAGS for a in (flag, value)], monkeypatch)
    assert [getattr(given, name) for _, _, name, _ in TRAIN_FLAGS] == [v for *_, v in TRAIN_FLAGS]
    # The original expands a leading ~ of --output-dir itself (args.output_dir.expanduser()).
    home = settings_from("train_baselines.py", "fl_saliency.ppo.train", "train", ["--output-dir", "~/fls-run"], monkeypatch)
    assert home.output_dir == Path.home() / "fls-run"


RUN_FLAGS = [("--num-env", "16", "num_env", 16), ("--evals-per-env", "512", "evals_per_env", 512),
             ("--eval-seed", "7", "eval_seed", 7), ("--max-eplen", "30000", "max_eplen", 30_000),
             ("--raw-obs", None, "raw_obs", True), ("--processed-obs", None, "processed_obs", True),
             ("--video-recorder", None, "video_recorder", True), ("--progress", None, "progress", True)]
RUN_DEFAULTS = {"num_env": 4, "evals_per_env": 1, "eval_seed": 1000, "max_eplen": 108_000, "raw_obs": False,
                "processed_obs": False, "video_recorder": False, "progress": False}


def flags(table):
    return [a for flag, value, _, _ in table for a in ((flag,) if value is None else (flag, value))]


def test_run_baselines_flags(monkeypatch, tmp_path):
    argv = ["--experiment-dir", str(tmp_path / "exp"), "--output-dir", str(tmp_path / "out")]
    defaults = settings_from("run_baselines.py", "fl_saliency.evaluation.evaluate", "evaluate", argv, monkeypatch)
    assert {k: getattr(defaults, k) for k in RUN_DEFAULTS} == RUN_DEFAULTS
    assert (defaults.experiment_dir, defaults.output_dir) == (tmp_path / "exp", tmp_path / "out")
    assert not defaults.deterministic  # the original samples its actions
    given = settings_from("run_baselines.py", "fl_saliency.evaluation.evaluate", "evaluate", argv + flags(RUN_FLAGS), monkeypatch)
    assert [getattr(given, name) for _, _, name, _ in RUN_FLAGS] == [v for *_, v in RUN_FLAGS]


SALIENCY_FLAGS = [("--eval-seed", "7", "eval_seed", 7), ("--processed-obs", None, "processed_obs", True),
                  ("--progress", None, "progress", True)]


def test_benchmark_atari_head_flags(monkeypatch, tmp_path):
    argv = ["--experiment-dir", str(tmp_path / "exp"), "--atari-head-dir", str(tmp_path / "ah"),
            "--output-dir", str(tmp_path / "out")]
    module = "fl_saliency.scoring.benchmark"
    defaults = settings_from("benchmark_atari_head.py", module, "run_benchmark", argv, monkeypatch)
    assert (defaults.experiment_dir, defaults.atari_head_dir, defaults.output_dir) == \
        (tmp_path / "exp", tmp_path / "ah", tmp_path / "out")
    assert (defaults.eval_seed, defaults.processed_obs, defaults.progress) == (1000, False, False)
    given = settings_from("benchmark_atari_head.py", module, "run_benchmark", argv + flags(SALIENCY_FLAGS), monkeypatch)
    assert [getattr(given, name) for _, _, name, _ in SALIENCY_FLAGS] == [v for *_, v in SALIENCY_FLAGS]


@pytest.mark.parametrize("script, argv", [("train_baselines.py", []), ("run_baselines.py", []),
                                          ("benchmark_atari_head.py", ["--experiment-dir", "e", "--output-dir", "o"])])
def test_required_flags_as_the_originals(script, argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, *argv])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert exit_.value.code == 2 and "required" in capsys.readouterr().err
