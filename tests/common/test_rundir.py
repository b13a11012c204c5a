"""The run folder's names (written only in common/rundir.py) and its readers."""

import ast
import fnmatch
import json
from pathlib import Path

import numpy as np
import pytest

from fl_saliency.common import rundir
from fl_saliency.common.rundir import UnreadableFile, read_method_scores, read_progress

PACKAGE = Path(rundir.__file__).parents[1]
# Every name of a file or folder a run holds, as a string constant of the source (f-strings give their parts).
RUN_NAMES = {"model.pkl", "config.json", "checkpoint.pt", "logs", "progress.csv", "log.txt", "tb",
             "events.out.tfevents.*", "results.json", "summary.json", "eval.pkl", "eval", "videos",
             "perception.mkv", "perception.mp4", "perception.*", "perception.", "saliency.pkl", "saliency.json",
             "saliency.csv", "saliency.", "saliency.*.pkl", "faithfulness.json", "trial_", "trial_*.mp4",
             ".monitor.csv", "0.*.monitor.csv"}


def string_constants(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_module_but_rundir_spells_a_run_files_name():
    assert {"model.pkl", "results.json", "saliency.json", "logs", "eval"} <= string_constants(
        PACKAGE / "common" / "rundir.py")  # the scan sees the names where they are written
    spelled = {str(path.relative_to(PACKAGE)): sorted(string_constants(path) & RUN_NAMES)
               for path in sorted(PACKAGE.rglob("*.py")) if path != PACKAGE / "common" / "rundir.py"}
    assert {module: names for module, names in spelled.items() if names} == {}


def test_run_outputs_name_what_train_evaluate_and_saliency_write():
    outputs = rundir.run_outputs()
    for name in ("config.json", "model.pkl", "checkpoint.pt", "logs/0.*.monitor.csv", "logs/progress.csv",
                 "logs/log.txt", "tb/events.out.tfevents.*", "results.json", "summary.json", "perception.mkv",
                 "perception.mp4", "eval/results.json", "eval/perception.mkv", "saliency.pkl", "saliency.gradient.pkl",
                 "saliency.json", "saliency.csv", "trial_*.mp4", "videos/vecenv.video.*.video*.mp4",
                 "saliency.my_method.pkl"):  # a user's method too, registered in this process or not
        assert any(fnmatch.fnmatch(name, pattern) for pattern in outputs), name
    assert rundir.saliency_file("attention") == "saliency.pkl" and rundir.saliency_file("rise") == "saliency.rise.pkl"
    assert rundir.monitor_file(3) == "0.3.monitor.csv" and rundir.trial_video_file(101) == "trial_101.mp4"
    assert rundir.eval_folder(Path("run")) == Path("run/eval")
    assert rundir.evaluation_folders(Path("run")) == (Path("run"), Path("run/eval"))


def test_progress_csv_as_baselines_writes_it(tmp_path):
    """Baselines' CSVOutputFormat leaves a cell empty when a row lacks a key; rows may be ragged."""
    path = tmp_path / "progress.csv"
    path.write_text("total_timesteps,eprewmean,fps\n1024,,900\n2048,1.5,900\n3072,2.5\n")
    steps, values = read_progress(path)
    assert steps.tolist() == [1024.0, 2048.0, 3072.0]
    np.testing.assert_array_equal(values, [np.nan, 1.5, 2.5])


def scores(mean: float) -> dict:
    return {"nss": {"mean": mean, "std": 0.5, "count": 3, "ci_low": mean - 1, "ci_high": mean + 1}}


def test_a_methods_scores_are_its_entry_not_the_top_level_copy(tmp_path):
    path = tmp_path / "saliency.json"
    # The top level repeats the first method's scores for compatibility; a file whose top level differs shows
    # that the entry under "methods" is what is read.
    path.write_text(json.dumps({"method": "attention", "overall": scores(9.0),
                                "methods": {"gradient": {"overall": scores(1.0)}, "rise": {"overall": scores(2.0)}},
                                "references": {"uniform": {"overall": scores(0.0)}}}))
    assert read_method_scores(path) == scores(1.0)
    assert read_method_scores(path, "rise") == scores(2.0)
    assert read_method_scores(path, "attention") == {}
    path.write_text(json.dumps({"methods": {"gradient": {"overall": {"nss": {"mean": "high"}}}}}))
    with pytest.raises(UnreadableFile, match="not the saliency command's summary"):
        read_method_scores(path)


def test_evaluation_summary_is_empty_where_there_is_none_to_read(tmp_path):
    assert rundir.read_evaluation_summary(tmp_path) == {}
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert rundir.read_evaluation_summary(tmp_path) == {}
    (tmp_path / "summary.json").write_text(json.dumps({"env_name": "BreakoutNoFrameskip-v4"}))
    assert rundir.read_evaluation_summary(tmp_path) == {"env_name": "BreakoutNoFrameskip-v4"}


def test_value_statistics_of_a_results_column():
    assert rundir.value_statistics([1.0, 2.0, 6.0]) == {"n": 3, "mean": 3.0, "std": pytest.approx(np.std([1, 2, 6])),
                                                        "median": 2.0, "min": 1.0, "max": 6.0}
