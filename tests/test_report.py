import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fl_saliency.logger import ProgressLogger
from fl_saliency.report import read_progress, read_saliency, read_sweep, write_report

ROOT = Path(__file__).resolve().parents[1]
FORK = ROOT / "tests" / "fixtures" / "fork"  # written by the original's code: tests/fixtures/make_fork_fixtures.py
FORK_EVENTS, = FORK.glob("events.out.tfevents.*")
CONFIG = {"network": "cnn_sparse_fls", "env_name": "BreakoutNoFrameskip-v4"}


def run_folder(root: Path, seed: str, group: str = "Breakout.cnn_sparse_fls") -> Path:
    folder = root / group / seed
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return folder


def quiet_report(root: Path) -> tuple[str, list[str]]:
    lines = []
    return write_report(root, echo=lines.append).read_text(), lines


def test_report_of_the_papers_released_layout_with_missing_pieces(tmp_path):
    for seed, rewards in (("01", [600.0, 640.0]), ("09", None)):
        folder = run_folder(tmp_path, seed)
        if rewards:
            (folder / "eval.pkl").write_bytes(pickle.dumps({"rewards": rewards, "lengths": [1.0, 2.0]}))
    runs = read_sweep(tmp_path)
    assert [(r.seed, r.mean_score) for r in runs] == [("01", 620.0), ("09", None)]
    text, lines = quiet_report(tmp_path)
    assert lines == [] and "Unreadable" not in text
    assert "| Breakout | cnn_sparse_fls | 2 | 1 | 620 | 624 |" in text
    assert "— (no run has a learning curve)" in text
    # Learning curves from progress.csv, one line per network with a band over seeds.
    for seed, scale in (("01", 1.0), ("09", 2.0)):
        logs = tmp_path / "Breakout.cnn_sparse_fls" / seed / "logs"
        logs.mkdir()
        (logs / "progress.csv").write_text("nupdates,total_timesteps,eprewmean\n1,1024,nan\n2,2048,1.5\n3,3072,"
                                           f"{3 * scale}\n")
    runs = read_sweep(tmp_path)
    assert runs[1].curve[0].tolist() == [2048.0, 3072.0] and runs[1].curve[1].tolist() == [1.5, 6.0]
    text, _ = quiet_report(tmp_path)
    assert "![curves_Breakout](curves_Breakout.png)" in text
    from PIL import Image

    assert Image.open(tmp_path / "curves_Breakout.png").size[0] > 300


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


def test_fork_event_file_is_read_against_total_timesteps_not_the_dump_counter(tmp_path):
    """The fork's logger numbers its TensorBoard events 1, 2, ... (the update); the agent steps are the
    total_timesteps scalar (update x 1024 with 8 environments of 128 steps)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    events = [e for e in EventFileLoader(str(FORK_EVENTS)).Load() if e.summary.value]
    assert [e.step for e in events] == list(range(1, 13))  # what the x-axis was read from before
    folder = run_folder(tmp_path, "01")
    shutil.copy(FORK_EVENTS, folder)  # the released runs ship the event file beside model.pkl
    run, = read_sweep(tmp_path)
    steps, values = run.curve
    # Updates 1 and 2 had no finished game (NaN) and are left out.
    np.testing.assert_array_equal(steps, 1024.0 * np.arange(3, 13))
    np.testing.assert_allclose(values, 1.0 + 0.25 * np.arange(10))
    text, lines = quiet_report(tmp_path)
    assert lines == [] and "![curves_Breakout](curves_Breakout.png)" in text
    # The same logger's progress.csv of the same run gives the same curve.
    (folder / "logs").mkdir()
    shutil.copy(FORK / "progress.csv", folder / "logs" / "progress.csv")
    from_csv = read_sweep(tmp_path)[0].curve
    np.testing.assert_array_equal(from_csv[0], steps)
    np.testing.assert_allclose(from_csv[1], values, rtol=1e-7)  # the events hold float32


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


def test_both_historical_saliency_formats_give_the_same_scores(tmp_path):
    current = read_saliency(FORK / "saliency.pkl")
    first = read_saliency(FORK / "saliency_first_version.pkl")
    assert [r["trial_number"] for r in current] == [r["trial_number"] for r in first] == [101, 102]
    for a, b in zip(current, first):
        for metric in ("nss", "kldiv", "sauc"):
            np.testing.assert_array_equal(a["metrics"][metric], b["metrics"][metric])
    # In the report: the mean over every defined map of every trial, as a plain numpy oracle.
    with open(FORK / "saliency.pkl", "rb") as f:
        raw = pickle.load(f)  # our own fixture, trusted
    expected_nss = np.nanmean(np.concatenate([r["metrics"]["nss"] for r in raw]))
    for seed, name in (("01", "saliency.pkl"), ("09", "saliency_first_version.pkl")):
        shutil.copy(FORK / name, run_folder(tmp_path, seed) / "saliency.pkl")
    runs = read_sweep(tmp_path)
    assert [r.saliency["nss"] for r in runs] == pytest.approx([expected_nss, expected_nss], rel=1e-12)
    text, lines = quiet_report(tmp_path)
    assert lines == [] and f"| Breakout | cnn_sparse_fls | 2 | {expected_nss:.4g} ± 0 |" in text


def write_bad(folder: Path, case: str) -> str:
    """One broken file of a run; returns its path in the run folder."""
    if case.startswith("results"):
        content = {"results-binary": b"\x80\x03\xff\x00binary", "results-truncated": b'{"rewards": [1.0, 2',
                   "results-list": b"[1,2]", "results-string-rewards": b'{"rewards": "abc"}'}[case]
        (folder / "results.json").write_bytes(content)
        return "results.json"
    if case == "progress":
        (folder / "logs").mkdir()
        (folder / "logs" / "progress.csv").write_text("nupdates,total_timesteps,eprewmean\n1,abc,xyz\n")
        return "logs/progress.csv"
    (folder / "saliency.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    return "saliency.pkl"


BAD_CASES = ["results-binary", "results-truncated", "results-list", "results-string-rewards", "progress", "saliency"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_one_bad_run_is_named_in_one_line_and_the_rest_reported(tmp_path, case):
    good = run_folder(tmp_path, "01")
    (good / "results.json").write_text(json.dumps({"rewards": [600.0, 640.0]}))
    name = write_bad(run_folder(tmp_path, "09"), case)
    text, lines = quiet_report(tmp_path)
    assert len(lines) == 1 and "Breakout.cnn_sparse_fls/09/" + name in lines[0]
    assert "## Unreadable files" in text and f"Breakout.cnn_sparse_fls/09/{name}" in text
    assert "| Breakout | cnn_sparse_fls | 2 | 1 | 620 | 624 |" in text  # the good run, still counted


def test_report_command_with_every_kind_of_bad_run(tmp_path):
    for i, case in enumerate(BAD_CASES):
        write_bad(run_folder(tmp_path, f"{i:02d}"), case)
    (run_folder(tmp_path, "99", "MsPacman.cnn") / "results.json").write_text(json.dumps({"rewards": [4000.0]}))
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "report", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len([line for line in result.stdout.splitlines() if line.startswith("unreadable")]) == len(BAD_CASES)
    assert "| MsPacman | cnn | 1 | 1 | 4000 | 4,874 |" in (tmp_path / "report.md").read_text()


def test_missing_sweep_folder_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "report", str(tmp_path / "nothing")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "sweep folder not found" in result.stderr


def test_progress_csv_as_baselines_writes_it(tmp_path):
    """Baselines' CSVOutputFormat leaves a cell empty when a row lacks a key; rows may be ragged."""
    path = tmp_path / "progress.csv"
    path.write_text("total_timesteps,eprewmean,fps\n1024,,900\n2048,1.5,900\n3072,2.5\n")
    steps, values = read_progress(path)
    assert steps.tolist() == [1024.0, 2048.0, 3072.0]
    np.testing.assert_array_equal(values, [np.nan, 1.5, 2.5])


def one_run_sweep(root):
    run = root / "Breakout.cnn" / "01"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"network": "cnn", "env_name": "BreakoutNoFrameskip-v4"}))
    return root


def test_report_into_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "report", str(one_run_sweep(tmp_path / "sweep")),
                             "--output-dir", str(tmp_path / "file")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"fl-saliency: error: output folder {tmp_path / 'file'} is a file (or lies under one); name a folder"]


def test_report_onto_a_full_disk_is_one_line(tmp_path, small_disk):
    with open(small_disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "report", str(one_run_sweep(tmp_path / "sweep")),
                             "--output-dir", str(small_disk / "r")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "fl-saliency: error: no space left on the device; free space and run the command again"], result.stderr
    assert list((small_disk / "r").iterdir()) == []
