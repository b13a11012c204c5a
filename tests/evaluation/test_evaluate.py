import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from fl_saliency.agents.checkpoint import save_config, save_model
from fl_saliency.envs.breakout_infinite import breakout_score, set_breakout_score
from fl_saliency.envs.emulator import AtariEmulator
from helpers import run_main
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.evaluation.evaluate import EvalSettings, evaluate
from fl_saliency.agents.networks import ActorCritic
from fl_saliency.evaluation.perception_video import read_frames
from numpy_reference import random_baselines_params

ROOT = Path(__file__).resolve().parents[2]


def settings(experiment, out, **kwargs):
    base = dict(experiment_dir=experiment, output_dir=out, num_env=2, evals_per_env=2, max_eplen=200, device="cpu")
    base.update(kwargs)
    return EvalSettings(**base)


@pytest.mark.slow
def test_results_have_the_original_keys_and_counts(experiment, tmp_path):
    evaluate(settings(experiment, tmp_path / "e"), echo=lambda s: None)
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert list(results) == ["rewards", "lengths", "elapsed_time", "done_per_env"]
    assert len(results["rewards"]) == len(results["lengths"]) == len(results["elapsed_time"]) == 4
    assert len(results["done_per_env"]) == 2 and min(results["done_per_env"]) >= 2
    # Grouped by environment: each env's two episodes in the order they ended (Monitor time grows).
    t = results["elapsed_time"]
    assert t[0] < t[1] and t[2] < t[3]
    assert all(0 < length <= 200 for length in results["lengths"])
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["rewards"]["n"] == 4 and summary["rewards"]["mean"] == pytest.approx(np.mean(results["rewards"]))
    assert summary["settings"]["max_eplen"] == 200


@pytest.mark.slow
def test_same_seed_same_rewards_with_deterministic_actions(experiment, tmp_path):
    runs = []
    for name in ("a", "b"):
        evaluate(settings(experiment, tmp_path / name, deterministic=True), echo=lambda s: None)
        runs.append(json.loads((tmp_path / name / "results.json").read_text()))
    assert runs[0]["rewards"] == runs[1]["rewards"] and runs[0]["lengths"] == runs[1]["lengths"]
    assert runs[0]["done_per_env"] == runs[1]["done_per_env"]


@pytest.mark.slow
def test_bf16_evaluation_plays_the_same_protocol(experiment, tmp_path):
    summary = evaluate(settings(experiment, tmp_path / "e", num_env=2, evals_per_env=1, max_eplen=50,
                                precision="bf16", processed_obs=True), echo=lambda s: None)
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert len(results["rewards"]) == 2 and results["lengths"] == [50.0, 50.0]
    assert summary["settings"]["precision"] == "bf16"
    frames = list(read_frames(tmp_path / "e" / "perception.mkv"))
    assert len(frames) == summary["agent_steps"] and frames[0].shape == (2 * 160, 160, 3)


def test_max_eplen_truncates_every_game(experiment, tmp_path):
    evaluate(settings(experiment, tmp_path / "e", max_eplen=20, evals_per_env=1), echo=lambda s: None)
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    # Breakout's games last far longer than 20 steps: every counted game is cut at exactly 20 Monitor steps.
    assert results["lengths"] == [20.0, 20.0]


@pytest.mark.slow
def test_video_has_one_frame_per_step_tiled_and_black_once_finished(experiment, tmp_path):
    summary = evaluate(settings(experiment, tmp_path / "e", raw_obs=True, processed_obs=True, max_eplen=400,
                                evals_per_env=1), echo=lambda s: None)
    frames = list(read_frames(tmp_path / "e" / "perception.mkv"))
    assert len(frames) == summary["agent_steps"]
    # Two environments: tile_images puts them on 2 rows; each tile is raw (210) over processed (160), 160 wide.
    assert frames[0].shape == (2 * (210 + 160), 160, 3)
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert frames[0][:370].max() > 0 and frames[0][370:].max() > 0
    # The env whose game ended first (the seeds make the two games differ) is black from then on; the
    # other still plays in the last frame.
    assert results["lengths"][0] != results["lengths"][1]
    first = int(np.argmin(results["elapsed_time"]))
    tile = lambda frame, env: frame[env * 370 : (env + 1) * 370]
    assert tile(frames[-1], first).max() == 0 and tile(frames[-1], 1 - first).max() > 0


def test_single_env_video_in_mp4(experiment, tmp_path):
    summary = evaluate(settings(experiment, tmp_path / "e", processed_obs=True, video_env=1, video_format="mp4",
                                max_eplen=30, evals_per_env=1), echo=lambda s: None)
    frames = list(read_frames(tmp_path / "e" / "perception.mp4"))
    assert len(frames) == summary["agent_steps"] and frames[0].shape == (160, 160, 3)


def test_papers_released_run_format_evaluates(tmp_path):
    folder = tmp_path / "Breakout.cnn_daqn" / "01"
    folder.mkdir(parents=True)
    joblib.dump(random_baselines_params("cnn_daqn", 4, np.random.default_rng(0)), folder / "model.pkl")
    (folder / "config.json").write_text(json.dumps({"network": "cnn_daqn", "env_name": "BreakoutNoFrameskip-v4",
                                                    "seed": 1}))
    evaluate(settings(folder, tmp_path / "out", evals_per_env=1, max_eplen=50), echo=lambda s: None)
    assert len(json.loads((tmp_path / "out" / "results.json").read_text())["rewards"]) == 2


def test_existing_results_are_kept_unless_forced(experiment, tmp_path):
    out = tmp_path / "e"
    evaluate(settings(experiment, out, evals_per_env=1, max_eplen=20), echo=lambda s: None)
    before = (out / "results.json").read_text()
    with pytest.raises(FlSaliencyError, match="already holds results.json; pass --force"):
        evaluate(settings(experiment, out, evals_per_env=1, max_eplen=20), echo=lambda s: None)
    assert (out / "results.json").read_text() == before
    replaced = ["perception.mkv", "videos/vecenv.video.7.video000000.mp4",
                "videos/vecenv.video.7.video000000.meta.json"]
    users = ["perception.notes.txt", "videos/mine.mp4"]
    (out / "videos").mkdir()
    for name in replaced + users:
        (out / name).write_bytes(b"the video of the results replaced below, or the user's own file")
    lines = []
    evaluate(settings(experiment, out, evals_per_env=1, max_eplen=20, force=True), echo=lines.append)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "perception.notes.txt", "results.json", "summary.json", "videos", "videos/mine.mp4"]
    assert f"removed the video of the replaced results: {', '.join(sorted(replaced))}" in lines


def run_script(*args):
    return subprocess.run([sys.executable, str(ROOT / "run_baselines.py"), *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.subprocess
def test_run_baselines_script(experiment, tmp_path):
    result = run_script("--experiment-dir", str(experiment), "--output-dir", str(tmp_path / "o"), "--num-env", "1",
                        "--evals-per-env", "1", "--max-eplen", "40")
    assert result.returncode == 0, result.stderr
    assert "1 episodes, score mean" in result.stdout and (tmp_path / "o" / "results.json").exists()


@pytest.mark.subprocess
def test_run_baselines_video_recorder_records_every_step_of_the_plain_screens(tmp_path):
    """--video-recorder: one MP4 holding the tiled screens at reset and after every step (the last included).
    Checked against the raw perception video of the same run: with cnn (attention all zeros) its frames are
    the plain screens before each step, lossless, with finished environments black."""
    folder = tmp_path / "exp"
    folder.mkdir()
    torch.manual_seed(0)
    save_model(ActorCritic("cnn", 4), folder / "model.pkl")
    save_config({"network": "cnn", "env_name": "BreakoutNoFrameskip-v4"}, folder / "config.json")
    result = run_script("--experiment-dir", str(folder), "--output-dir", str(tmp_path / "o"), "--num-env", "2",
                        "--evals-per-env", "1", "--max-eplen", "400", "--raw-obs", "--video-recorder")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    videos = sorted((tmp_path / "o" / "videos").iterdir())
    assert [p.name.split(".video")[-1] for p in videos] == ["000000.meta.json", "000000.mp4"]
    meta = json.loads(videos[0].read_text())
    assert meta["step_id"] == 0 and meta["content_type"] == "video/mp4"
    gameplay = list(read_frames(videos[1]))
    perception = list(read_frames(tmp_path / "o" / "perception.mkv"))
    assert len(gameplay) == summary["agent_steps"] + 1 == len(perception) + 1
    assert gameplay[0].shape == (2 * 210, 160, 3)  # two environments tiled on two rows
    lengths = json.loads((tmp_path / "o" / "results.json").read_text())["lengths"]
    both_playing = int(min(lengths)) // 4 - 2
    for step in (0, both_playing // 2, both_playing):
        assert np.abs(gameplay[step].astype(int) - perception[step]).mean() < 2.0, step  # H.264 at crf 18
    # After an environment finished it keeps playing in the gameplay video (black in the perception video).
    assert gameplay[-2].max() > 0 and np.abs(gameplay[-2].astype(int) - perception[-1]).max() > 50


def test_gameplay_recorder_starts_a_file_after_video_length_plus_one_frames(tmp_path):
    """VecVideoRecorder(video_length=3): files start at steps 0, 4, 8, each named by that step; every frame
    is in exactly one file, in order."""
    from fl_saliency.evaluation.gameplay_video import GameplayRecorder

    def screens(step):  # one grey level a step, two environments
        return np.full((2, 210, 160, 3), 20 * step, np.uint8)

    recorder = GameplayRecorder(tmp_path / "videos", video_length=3)
    recorder.reset(screens(0))
    for step in range(1, 11):
        recorder.step(screens(step))
    paths = recorder.close()
    assert [p.name[-10:] for p in paths] == ["000000.mp4", "000004.mp4", "000008.mp4"]
    levels = [[int(round(f.mean())) for f in read_frames(p)] for p in paths]
    assert [len(x) for x in levels] == [4, 4, 3]
    np.testing.assert_allclose(sum(levels, []), [20 * s for s in range(11)], atol=2)
    assert [json.loads(p.with_suffix(".meta.json").read_text())["step_id"] for p in paths] == [0, 4, 8]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: (f / "model.pkl").unlink(), "checkpoint not found"),
        (lambda f: (f / "model.pkl").write_bytes(b"garbage"), "not a readable checkpoint"),
        (lambda f: (f / "config.json").write_text('{"network": "cnn_sparse_fls"}'), "does not name env_name"),
        (lambda f: (f / "config.json").write_text('{"network": "cnn_sparse_fls", "env_name": "MsPacman"}'),
         "has 4 actions but MsPacman has 9"),
    ],
)
def test_bad_experiments_are_one_line(experiment, tmp_path, capsys, mutate, message):
    import shutil

    folder = tmp_path / "exp"
    shutil.copytree(experiment, folder)
    mutate(folder)
    code, stderr = run_main(capsys, ["--experiment-dir", str(folder), "--output-dir", str(tmp_path / "o"),
                                     "--num-env", "1"], command="evaluate", prog="run_baselines.py")
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert message in stderr


def test_breakout_infinite_rewrites_the_score_and_keeps_true_points():
    env = AtariEmulator("Breakout", breakout_infinite=True)  # agent steps of 4 NOOP frames, no other wrapper
    env.reset(seed=0)
    ale = env.unwrapped.ale
    set_breakout_score(ale, 863)
    assert breakout_score(ale) == 863
    _, reward, *_ = env.step(0)
    assert reward == 863  # the test's own RAM write, seen by ALE as points
    set_breakout_score(ale, 864)  # as if a brick had just been hit at 863
    _, reward, *_ = env.step(0)
    # Frame 1: one true point, the RAM rewritten to 432; frame 2: ALE's -432 for it, added back.
    assert reward == 1 and breakout_score(ale) == 432
    for _ in range(50):
        _, reward, *_ = env.step(0)
        assert reward >= 0


def test_breakout_infinite_is_only_for_breakout():
    with pytest.raises(FlSaliencyError, match="patches Breakout's score"):
        AtariEmulator("Pong", breakout_infinite=True)


@pytest.mark.subprocess
def test_full_disk_keeps_the_results_and_drops_the_video_in_one_line(experiment, small_disk):
    out = small_disk / "ev"
    result = run_script("--experiment-dir", str(experiment), "--output-dir", str(out), "--num-env", "2",
                        "--max-eplen", "300", "--raw-obs", "--processed-obs", "--device", "cpu")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "run_baselines.py: error: the results are written, but not the video: No space left on device "
        "(its temporary files are removed)"]
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "summary.json"]
    assert len(json.loads((out / "results.json").read_text())["rewards"]) == 2
    assert json.loads((out / "summary.json").read_text())["video"] is None


def test_leftovers_of_a_killed_evaluation_are_removed(experiment, tmp_path):
    out = tmp_path / "e"
    (out / ".perception.x1y2.tmp").mkdir(parents=True)
    (out / ".perception.x1y2.tmp" / "maps.f16").write_bytes(b"\0" * 10)
    (out / ".perception.mkv.tmp.mkv").write_bytes(b"half a video")
    (out / ".results.json.abc.tmp").write_text("{")
    lines = []
    evaluate(settings(experiment, out, evals_per_env=1, max_eplen=20), echo=lines.append)
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "summary.json"]
    assert lines[0] == (f"removed the unfinished files of an interrupted run from {out}: .perception.mkv.tmp.mkv, "
                        ".perception.x1y2.tmp, .results.json.abc.tmp")


@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopped_evaluation_leaves_no_partial_files(experiment, tmp_path, signum):
    out = tmp_path / "e"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_baselines.py"), "--experiment-dir", str(experiment),
                             "--output-dir", str(out), "--num-env", "2", "--evals-per-env", "1000", "--raw-obs",
                             "--device", "cpu"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(out.glob(".perception.*.tmp/maps.f16")):  # recording
        assert time.time() < deadline and proc.poll() is None, "the evaluation never started recording"
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.strip().splitlines() == ["run_baselines.py: interrupted"]
    assert not out.exists()  # nothing written: the folder made for it is removed too


def fill(disk, leave: int) -> Path:
    """A file that takes all of ``disk``'s free space but ``leave`` bytes (a tmpfs counts whole 4 KiB pages)."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - leave))
    return filler


@pytest.mark.slow
def test_results_and_summary_appear_together_and_the_advice_after_a_full_disk_works(experiment, small_disk):
    out = small_disk / "ev"
    filler = fill(small_disk, 8192)  # the lock file and one of results.json and summary.json fit, not both
    command = ("--experiment-dir", str(experiment), "--output-dir", str(out), "--num-env", "1", "--max-eplen", "20",
               "--device", "cpu")
    first = run_script(*command)
    assert first.returncode == 2 and first.stderr.strip().splitlines() == [
        f"run_baselines.py: error: no space left on the device of {out / 'results.json'}; "
        f"free space and run the command again"]
    assert not out.exists()  # nothing written: the folder made for it is removed too
    filler.unlink()
    again = run_script(*command)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["rewards"]["n"] == 1


def test_progress_without_a_terminal_is_lines_and_video_env_without_a_video_is_said(experiment, tmp_path, capsys):
    out = tmp_path / "e"
    code, stderr = run_main(capsys, ["--experiment-dir", str(experiment), "--output-dir", str(out), "--num-env", "2",
                                     "--max-eplen", "20", "--video-env", "1", "--progress", "--device", "cpu"],
                            command="evaluate", prog="run_baselines.py")
    assert code == 0
    assert "\r" not in stderr
    warning, first, *_, last = stderr.splitlines()
    assert warning == "warning: --video-env 1 has no effect without a video (--raw-obs or --processed-obs)"
    assert first.startswith("  0%|") and " 0/2 [" in first and "episode/s]" in first
    assert last.startswith("100%|") and " 2/2 [" in last
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "summary.json"]  # the run went on, no video
    code, stderr = run_main(capsys, ["--experiment-dir", str(experiment), "--output-dir", str(out), "--num-env", "1",
                                     "--max-eplen", "20", "--force", "--device", "cpu"],
                            command="evaluate", prog="run_baselines.py")
    assert code == 0 and stderr == ""  # without --progress: nothing


@pytest.mark.parametrize("content, problem", [
    ('{"rewards": [], "lengths": []}', "holds no episode rewards (an evaluation plays at least one game)"),
    ('{"rewards": [3.0, NaN]}', "its rewards include nan, not scores of played games"),
    ('{"rewards": [Infinity, -Infinity, 1.0]}', "its rewards include -inf, inf, not scores of played games"),
    ('{"lengths": [20.0]}', "holds a dict, not an evaluation result (an object with 'rewards')"),
])
def test_export_of_an_empty_or_broken_results_json_is_one_line(experiment, tmp_path, capsys, content, problem):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(experiment, run)
    (run / "results.json").write_text(content)
    code, stderr = run_main(capsys, ["export", str(run), "--out", str(tmp_path / "hf")])
    assert code == 2 and stderr.splitlines() == [f"fl-saliency: error: {run / 'results.json'}: {problem}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing written
