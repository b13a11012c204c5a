"""A sweep folder's runs as the report reads them (fl_saliency/report/runs.py)."""

import pickle

import numpy as np
import pytest

from fl_saliency.ppo.logger import ProgressLogger
from fl_saliency.report.runs import read_sweep
from helpers import run_folder


@pytest.mark.parametrize("rewards", [{"rewards": [3.0, 5.0]}, {"rewards": np.array([3.0, 5.0], np.float32)},
                                     [3, 5], np.array([3.0, 5.0])])
def test_eval_pkl_as_a_dict_or_a_list_of_episode_rewards(tmp_path, rewards):
    (run_folder(tmp_path, "01") / "eval.pkl").write_bytes(pickle.dumps(rewards))
    assert read_sweep(tmp_path)[0].mean_score == 4.0


@pytest.mark.parametrize("content, named", [("abc", "a str"), ({"scores": [1.0]}, "without 'rewards' (keys: scores)"),
                                            ({"rewards": [[1.0]]}, "a list of list")])
def test_eval_pkl_holding_something_else_is_named_in_one_line(tmp_path, content, named):
    (run_folder(tmp_path, "01") / "eval.pkl").write_bytes(pickle.dumps(content))
    run, = read_sweep(tmp_path)
    assert run.mean_score is None and len(run.problems) == 1 and named in run.problems[0]
    assert "eval.pkl" in run.problems[0] and "\n" not in run.problems[0]


def test_our_tensorboard_events_give_the_same_curve_as_progress_csv(tmp_path):
    folder = run_folder(tmp_path, "01")
    keys = ("nupdates", "total_timesteps", "eprewmean")
    logger = ProgressLogger(folder, keys, step_key="total_timesteps", echo=lambda s: None)
    for update, reward in enumerate([float("nan"), 2.0, 4.0, 3.0], start=1):
        logger.log({"nupdates": update, "total_timesteps": update * 256, "eprewmean": reward})
    logger.close()
    from_csv = read_sweep(tmp_path)[0].curve
    assert from_csv[0].tolist() == [512.0, 768.0, 1024.0] and from_csv[1].tolist() == [2.0, 4.0, 3.0]
    (folder / "logs" / "progress.csv").unlink()
    from_events = read_sweep(tmp_path)[0].curve
    np.testing.assert_array_equal(from_events[0], from_csv[0])
    np.testing.assert_array_equal(from_events[1], from_csv[1])


def test_events_without_total_timesteps_are_named_not_plotted_against_their_steps(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    folder = run_folder(tmp_path, "01")
    with SummaryWriter(log_dir=str(folder / "tb")) as writer:
        for step in (1, 2, 3):
            writer.add_scalar("eprewmean", 1.0, step)
    run, = read_sweep(tmp_path)
    assert run.curve is None and "without a total_timesteps scalar" in run.problems[0]
